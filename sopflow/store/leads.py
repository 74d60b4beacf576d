"""Leads in the store: added once per email address, with one claimed run per (SOP, lead)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow.leads import LeadIn
from sopflow.store import reviews
from sopflow.store.db import transaction
from sopflow.store.models import Lead, SopRun, new_id, utcnow


@dataclass(frozen=True)
class ClaimedRun:
    sop: str
    sop_run_id: str
    flow_run_id: str | None  # None until the dispatcher has created the Prefect flow run


@dataclass(frozen=True)
class Admitted:
    """What became of one submitted lead: its id, whether it was new, and its SOP runs."""

    lead_id: str
    created: bool
    runs: tuple[ClaimedRun, ...]
    newly_claimed: int = 0  # runs claimed by this submission (an SOP added since a known lead came claims one)

    def as_json(self) -> dict[str, object]:
        return {"id": self.lead_id, "created": self.created,
                "runs": [{"sop": r.sop, "sop_run_id": r.sop_run_id, "flow_run_id": r.flow_run_id} for r in self.runs]}


def admit_leads(session: Session, leads: Sequence[LeadIn], sop_ids: Sequence[str]) -> list[Admitted]:
    """Store each lead unless its email is known, and claim a run of every SOP in `sop_ids` a review did not retire.

    One answer per submitted lead, in order; a repeated email is `created` only where it first
    appears. Set-based (a few statements, whatever the number of leads), so the intake can write
    a burst in one transaction. Raises IntegrityError when another writer stored one of these
    leads or runs meanwhile: roll back and call again (`store_leads` does).
    """
    if sop_ids:  # a review may have retired one since the caller looked: it starts no new runs
        retired = reviews.retired(session, sop_ids)
        sop_ids = [sop_id for sop_id in sop_ids if sop_id not in retired]
    emails = list(dict.fromkeys(lead.email for lead in leads))
    lead_ids = dict(session.execute(select(Lead.email, Lead.id).where(Lead.email.in_(emails))).tuples().all())
    now, new_rows = utcnow(), []
    for lead in leads:
        if lead.email not in lead_ids:
            lead_ids[lead.email] = new_id()
            new_rows.append({**lead.model_dump(), "id": lead_ids[lead.email], "status": "new", "fields": {},
                             "created_at": now, "updated_at": now})
    if new_rows:
        session.execute(insert(Lead.__table__), new_rows)  # Core executemany: no ORM bookkeeping per row
    ids = [lead_ids[email] for email in emails]
    claimed = {(sop, lead): (run, flow_run) for sop, lead, run, flow_run in session.execute(
        select(SopRun.sop_id, SopRun.lead_id, SopRun.id, SopRun.flow_run_id)
        .where(SopRun.lead_id.in_(ids), SopRun.sop_id.in_(sop_ids)))}
    new_runs, newly = [], dict.fromkeys(ids, 0)
    for lead_id in ids:
        for sop_id in sop_ids:
            if (sop_id, lead_id) not in claimed:
                claimed[sop_id, lead_id] = (new_id(), None)
                new_runs.append({"id": claimed[sop_id, lead_id][0], "sop_id": sop_id, "lead_id": lead_id,
                                 "state": "pending", "created_at": now})
                newly[lead_id] += 1
    if new_runs:
        session.execute(insert(SopRun.__table__), new_runs)
    answers, first = [], {row["email"] for row in new_rows}
    for lead in leads:
        lead_id = lead_ids[lead.email]
        runs = tuple(ClaimedRun(sop, *claimed[sop, lead_id]) for sop in sop_ids)
        answers.append(Admitted(lead_id, lead.email in first, runs, newly.pop(lead_id, 0)))
        first.discard(lead.email)
    return answers


def store_leads(leads: Sequence[LeadIn], sop_ids: Sequence[str], url: str | None = None) -> list[Admitted]:
    """`admit_leads` in a transaction of its own, once more if a concurrent writer stored one of them first."""
    try:
        with transaction(url) as session:
            return admit_leads(session, leads, sop_ids)
    except IntegrityError:  # committed by the other writer meanwhile: this time they are found
        with transaction(url) as session:
            return admit_leads(session, leads, sop_ids)


def add_lead(session: Session, lead_in: LeadIn) -> tuple[Lead, bool]:
    """Store the lead unless its email is known; return (lead, created)."""
    admitted = admit_leads(session, [lead_in], [])[0]
    return session.get_one(Lead, admitted.lead_id), admitted.created


def get_lead(session: Session, lead_id: str) -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None:
        raise LookupError(f"no lead with id {lead_id!r}")
    return lead
