"""The outbox: emails steps have queued, one per (run, step)."""

from __future__ import annotations

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from sopflow.store.filters import where_given
from sopflow.store.models import OutboxEmail


def queue_email(session: Session, email: OutboxEmail) -> OutboxEmail:
    session.add(email)
    session.flush()
    return email


def emails_query(status: str | None = None, lead_id: str | None = None) -> Select[tuple[OutboxEmail]]:
    """Queued emails, newest first; only those in `status` or to `lead_id` when given."""
    query = select(OutboxEmail).order_by(OutboxEmail.created_at.desc(), OutboxEmail.id.desc())
    return where_given(query, (OutboxEmail.status, status), (OutboxEmail.lead_id, lead_id))
