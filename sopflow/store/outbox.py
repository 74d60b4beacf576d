"""The outbox: emails steps have queued, one per (run, step)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from sopflow.store.models import OutboxEmail


def queue_email(session: Session, email: OutboxEmail) -> OutboxEmail:
    session.add(email)
    session.flush()
    return email
