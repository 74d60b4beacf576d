"""Approval asks and answers: every answer is kept, accepted or not."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sopflow.store.db import get_or_create
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


def waiting(session: Session) -> list[tuple[Approval, SopRun]]:
    """Every ask not answered yet, with its run, oldest first."""
    query = (
        select(Approval, SopRun)
        .join(SopRun, SopRun.id == Approval.sop_run_id)
        .where(Approval.answered_at.is_(None))
        .order_by(Approval.asked_at)
    )
    return [(a, r) for a, r in session.execute(query)]
