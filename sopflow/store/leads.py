"""Leads in the store: added once per email address."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow.leads import LeadIn
from sopflow.store.models import Lead


def add_lead(session: Session, lead_in: LeadIn) -> tuple[Lead, bool]:
    """Store the lead unless its email is known; return (lead, created)."""
    existing = session.scalar(select(Lead).where(Lead.email == lead_in.email))
    if existing is not None:
        return existing, False
    lead = Lead(**lead_in.model_dump())
    try:
        with session.begin_nested():
            session.add(lead)
    except IntegrityError:  # the same email was added concurrently
        return session.scalars(select(Lead).where(Lead.email == lead_in.email)).one(), False
    return lead, True


def get_lead(session: Session, lead_id: str) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise LookupError(f"no lead with id {lead_id!r}")
    return lead
