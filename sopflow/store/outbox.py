"""The outbox: emails steps have queued, one per (run, step)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sopflow.store.models import OutboxEmail


def queue_email(session: Session, email: OutboxEmail) -> OutboxEmail:
    session.add(email)
    session.flush()
    return email


def emails_for_run(session: Session, run_id: str) -> list[OutboxEmail]:
    return list(session.scalars(select(OutboxEmail).where(OutboxEmail.sop_run_id == run_id).order_by(OutboxEmail.id)))
