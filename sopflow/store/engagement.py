"""Engagement events in the store: recorded one at a time, counted per lead over a recent window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sopflow.scoring import ENGAGEMENT_KINDS
from sopflow.store.leads import get_lead
from sopflow.store.models import Engagement, utcnow


def record(
    session: Session, lead_id: str, kind: str, occurred_at: datetime | None = None, source: str | None = None
) -> Engagement:
    """Store that the lead did `kind` (opened, replied, meeting, visit) at `occurred_at` (default now).

    Raises ValueError for an unknown kind and LookupError for an unknown lead; nothing is stored then.
    """
    if kind not in ENGAGEMENT_KINDS:
        raise ValueError(f"unknown engagement event {kind!r}; use one of {', '.join(ENGAGEMENT_KINDS)}")
    if occurred_at is not None and occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware, e.g. 2025-01-31T09:00:00+00:00")
    get_lead(session, lead_id)
    event = Engagement(lead_id=lead_id, kind=kind, occurred_at=occurred_at or utcnow(), source=source)
    session.add(event)
    session.flush()
    return event


def counts(session: Session, lead_id: str, since: datetime) -> dict[str, int]:
    """How many events of each kind the lead had at or after `since`: {"opened": 2, "replied": 0, ...}."""
    rows = session.execute(
        select(Engagement.kind, func.count())
        .where(Engagement.lead_id == lead_id, Engagement.occurred_at >= since)
        .group_by(Engagement.kind)
    )
    found = {kind: int(n) for kind, n in rows}
    return {kind: found.get(kind, 0) for kind in ENGAGEMENT_KINDS}
