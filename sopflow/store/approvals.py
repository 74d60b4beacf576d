"""Approval asks and answers: every answer is kept, accepted or not."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sopflow.store.db import get_or_create
from sopflow.store.filters import where_given
from sopflow.store.models import Approval, SopRun, utcnow


def open_ask(
    session: Session, run_id: str, step_id: str, role: str, prompt: str, due_by: datetime | None
) -> Approval:
    """The step's current ask: the first one not answered yet, created if every earlier one was."""
    answered = session.scalar(
        select(func.count()).where(
            Approval.sop_run_id == run_id, Approval.step_id == step_id, Approval.answered_at.is_not(None)
        )
    )
    query = select(Approval).where(Approval.sop_run_id == run_id, Approval.step_id == step_id, Approval.ask == answered)
    return get_or_create(session, query, lambda: Approval(
        sop_run_id=run_id, step_id=step_id, ask=answered, role=role, prompt=prompt, due_by=due_by))


def previous_asks(session: Session, run_id: str, step_id: str) -> list[Approval]:
    query = select(Approval).where(
        Approval.sop_run_id == run_id, Approval.step_id == step_id, Approval.answered_at.is_not(None)
    )
    return list(session.scalars(query.order_by(Approval.ask)))


def record_answer(
    session: Session, approval_id: int, decision: str, approver: str, notes: str, refusal: str | None
) -> Approval:
    """Store the answer to one ask, once; a repeated call returns the stored answer unchanged."""
    ask = session.get_one(Approval, approval_id, with_for_update=True)
    if ask.answered_at is None:
        ask.answered_at = utcnow()
        ask.decision, ask.approver, ask.notes = decision, approver, notes
        ask.accepted, ask.refusal = refusal is None, refusal
    return ask


def waiting_query(
    sop_id: str | None = None, step_id: str | None = None, flow_run_id: str | None = None
) -> Select[tuple[Approval, SopRun]]:
    """Every ask not answered yet, with its run, oldest first; only those of `sop_id`, `step_id`, `flow_run_id`."""
    query = (
        select(Approval, SopRun)
        .join(SopRun, SopRun.id == Approval.sop_run_id)
        .where(Approval.answered_at.is_(None))
        .order_by(Approval.asked_at, Approval.id)
    )
    return where_given(query, (SopRun.sop_id, sop_id), (Approval.step_id, step_id), (SopRun.flow_run_id, flow_run_id))


def waiting(
    session: Session, sop_id: str | None = None, step_id: str | None = None, flow_run_id: str | None = None
) -> list[tuple[Approval, SopRun]]:
    return [(a, r) for a, r in session.execute(waiting_query(sop_id, step_id, flow_run_id))]


def step_ids(session: Session, sop_id: str | None = None) -> list[str]:
    """Every approval step id the store has asks of (of `sop_id` when given)."""
    query = select(Approval.step_id).distinct().join(SopRun, SopRun.id == Approval.sop_run_id)
    return list(session.scalars(where_given(query, (SopRun.sop_id, sop_id)).order_by(Approval.step_id)))
