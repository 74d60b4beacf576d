"""Feedback on SOPs: kept against the SOP version it is about, read back for the SOP's review."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from sopflow.forms import feedback_problem
from sopflow.store.models import Feedback

Source = Literal["cli", "approval"]


def add_feedback(
    session: Session, sop_id: str, sop_version: int, sop_hash: str, text: str, source: Source,
    step_id: str | None = None, given_by: str | None = None, sop_run_id: str | None = None,
) -> Feedback:
    """Store `text` about `sop_id` (its `step_id` when given); ValueError, storing nothing, when the text is unfit."""
    problem = feedback_problem(text)
    if problem:
        raise ValueError(problem)
    row = Feedback(sop_id=sop_id, sop_version=sop_version, sop_hash=sop_hash, step_id=step_id, text=text.strip(),
                   given_by=(given_by or "").strip() or None, source=source, sop_run_id=sop_run_id)
    session.add(row)
    session.flush()
    return row


def feedback_for(session: Session, sop_id: str, since: datetime | None = None) -> list[Feedback]:
    """The feedback on `sop_id` (given at or after `since`, when given), oldest first."""
    query = select(Feedback).where(Feedback.sop_id == sop_id)
    if since is not None:
        query = query.where(Feedback.created_at >= since)
    return list(session.scalars(query.order_by(Feedback.created_at, Feedback.id)))
