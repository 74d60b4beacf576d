"""Overdue actions taken on approval asks: each claimed once per (ask, action index), whatever runs housekeeping."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow.store.models import Approval, SlaAction, SopRun, utcnow


def claim(session: Session, approval_id: int, index: int, action: str, detail: dict[str, Any],
          due_at: datetime) -> SlaAction | None:
    """Claim action `index` of ask `approval_id`: the new row, or None when it was taken already (here or elsewhere).

    The insert runs in a savepoint, so a concurrent claim loses without spoiling the caller's transaction.
    """
    row = SlaAction(approval_id=approval_id, action_index=index, action=action, detail=detail, due_at=due_at,
                    attempts=0, done_at=None if action == "decide" else utcnow())
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row


def taken_for_step(session: Session, run_id: str, step_id: str) -> dict[int, SlaAction]:
    """The actions taken for any ask of the run's step, by action index (the first taken of each)."""
    query = (select(SlaAction).join(Approval, Approval.id == SlaAction.approval_id)
             .where(Approval.sop_run_id == run_id, Approval.step_id == step_id).order_by(SlaAction.id))
    taken: dict[int, SlaAction] = {}
    for row in session.scalars(query):
        taken.setdefault(row.action_index, row)
    return taken


def escalated_roles(session: Session, run_id: str, step_id: str) -> list[str]:
    """The roles the run's step was escalated to (for any of its asks), in the order it happened."""
    roles = [row.detail.get("to") for row in taken_for_step(session, run_id, step_id).values()
             if row.action == "escalate"]
    return list(dict.fromkeys(role for role in roles if role))


def sopflow_decision(session: Session, approval_id: int) -> str | None:
    """The decision a `decide` action claimed for ask `approval_id` (sopflow answers it), or None."""
    query = select(SlaAction.detail).where(SlaAction.approval_id == approval_id, SlaAction.action == "decide")
    detail = session.scalar(query)
    return detail.get("decision") if detail else None


def decides_to_send(session: Session) -> list[tuple[SlaAction, Approval, SopRun]]:
    """Claimed `decide` actions whose answer has not reached the run yet, on asks still open."""
    query = (select(SlaAction, Approval, SopRun).join(Approval, Approval.id == SlaAction.approval_id)
             .join(SopRun, SopRun.id == Approval.sop_run_id)
             .where(SlaAction.action == "decide", SlaAction.done_at.is_(None), Approval.answered_at.is_(None))
             .order_by(SlaAction.id))
    return [(a, ask, run) for a, ask, run in session.execute(query)]


def lease_decide(session: Session, action_id: int, attempts: int) -> bool:
    """Take the next attempt at sending a decide action's answer: True for exactly one caller per attempt."""
    taken = session.execute(update(SlaAction).where(SlaAction.id == action_id, SlaAction.attempts == attempts)
                            .values(attempts=attempts + 1))
    return taken.rowcount == 1


def settle_decide(session: Session, action_id: int, error: str | None) -> None:
    """Record how sending a decide action's answer went: done, or the reason it did not get through."""
    values: dict[str, Any] = {"last_error": error} if error else {"done_at": utcnow(), "last_error": None}
    session.execute(update(SlaAction).where(SlaAction.id == action_id).values(**values))


@dataclass(frozen=True)
class ActionTaken:
    """One overdue action as the audit reports it."""

    sop_run_id: str
    step_id: str
    ask_id: int
    ask: int  # 0 for the first ask of the step, 1 after a refused answer, ...
    index: int  # its place in the step's `overdue` list
    action: str  # remind | escalate | decide
    detail: dict[str, Any]  # remind: {people}; escalate: {to, people}; decide: {decision, reason}
    due_at: datetime
    taken_at: datetime
    done_at: datetime | None  # decide: when the run got the answer; None while it has not (see last_error)
    last_error: str | None


def actions_taken(session: Session, run_ids: Collection[str] | None = None,
                  since: datetime | None = None) -> list[ActionTaken]:
    """Every overdue action taken (of the runs `run_ids`, since `since`, when given), oldest first: for the audit."""
    query = (select(SlaAction, Approval).join(Approval, Approval.id == SlaAction.approval_id)
             .order_by(SlaAction.taken_at, SlaAction.id))
    if run_ids is not None:
        query = query.where(Approval.sop_run_id.in_(list(run_ids)))
    if since is not None:
        query = query.where(SlaAction.taken_at >= since)
    return [ActionTaken(ask.sop_run_id, ask.step_id, ask.id, ask.ask, row.action_index, row.action, dict(row.detail),
                        row.due_at, row.taken_at, row.done_at, row.last_error)
            for row, ask in session.execute(query)]
