"""Leads in the store: added once per email address."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from sopflow.leads import LeadIn
from sopflow.store.db import get_or_create
from sopflow.store.models import Lead


def add_lead(session: Session, lead_in: LeadIn) -> tuple[Lead, bool]:
    """Store the lead unless its email is known; return (lead, created)."""
    candidate = Lead(**lead_in.model_dump())
    lead = get_or_create(session, select(Lead).where(Lead.email == lead_in.email), lambda: candidate)
    return lead, lead is candidate


def get_lead(session: Session, lead_id: str) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise LookupError(f"no lead with id {lead_id!r}")
    return lead
