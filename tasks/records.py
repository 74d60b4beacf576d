"""Exactly once per (run, step): a step's effects and its record commit in one transaction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow.plan import Plan, PlannedStep
from sopflow.run_context import run_context
from sopflow.store import runs
from sopflow.store.db import transaction
from sopflow.store.models import utcnow

Result = dict[str, Any]


class SkipStep(Exception):
    """Raised by a step's action to record the step as skipped, with the reason, instead of acting."""


@dataclass(frozen=True)
class StepCall:
    """One step of one run: what a step task is given (ids only, never personal data)."""

    plan: Plan
    run_id: str
    lead_id: str
    step_id: str

    @property
    def planned(self) -> PlannedStep:
        return self.plan.steps[self.step_id]


def step_context(session: Session, call: StepCall) -> dict[str, Any]:
    """What conditions and templates see: the lead, earlier steps' results and the SOP."""
    return run_context(session, call.plan.sop, call.run_id, call.lead_id)


def recorded(session: Session, call: StepCall) -> Result | None:
    """The step's recorded result, or None when it has not run in this run."""
    record = runs.step_record(session, call.run_id, call.step_id)
    return None if record is None else {"status": record.status, **record.result}


def settled(session: Session, call: StepCall) -> Result | None:
    """The step's recorded result if it already ran; records and returns a skip when its condition fails."""
    done = recorded(session, call)
    if done is not None:
        return done
    condition = call.planned.condition
    if condition is not None and not condition.evaluate(step_context(session, call)):
        return complete(session, call, {"reason": f"condition not met: {condition.source}"}, utcnow(), "skipped")
    return None


def complete(session: Session, call: StepCall, result: Result, started: datetime, status: str = "completed") -> Result:
    runs.record_step(session, call.run_id, call.step_id, call.planned.step.kind, status, result, started)
    return {"status": status, **result}


def once(call: StepCall, act: Callable[[Session, StepCall, dict[str, Any]], Result]) -> Result:
    """Run `act` unless the step already ran in this run; its effects commit with the step record."""
    started = utcnow()
    try:
        with transaction() as session:
            done = settled(session, call)
            if done is not None:
                return done
            try:
                result, status = act(session, call, step_context(session, call)), "completed"
            except SkipStep as skip:
                result, status = {"reason": str(skip)}, "skipped"
            return complete(session, call, result, started, status)
    except IntegrityError:  # the same step ran concurrently and recorded first; its record stands
        with transaction() as session:
            done = recorded(session, call)
            if done is None:
                raise
            return done


def once_outside(call: StepCall, act: Callable[[dict[str, Any]], Result]) -> Result:
    """Run `act(context)` unless the step already ran in this run, outside any transaction: for I/O with the
    outside world (a team function, an HTTP endpoint) that may be slow or hang, so the store is not held
    meanwhile. Its result is recorded after; a crash in between acts again, so `act` must be idempotent (it is
    given the step's idempotency key)."""
    started = utcnow()
    with transaction() as session:
        done = settled(session, call)
        if done is not None:
            return done
        context = step_context(session, call)
    try:
        result, status = act(context), "completed"
    except SkipStep as skip:
        result, status = {"reason": str(skip)}, "skipped"
    with transaction() as session:
        done = recorded(session, call)  # a concurrent attempt may have recorded first: its record stands
        return done if done is not None else complete(session, call, result, started, status)

