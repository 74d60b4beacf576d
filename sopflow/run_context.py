"""What a run's steps see: the lead, earlier steps' results and the SOP (conditions, templates, forms, notices)."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from sopflow.leads import lead_context
from sopflow.schema import Sop
from sopflow.store import runs
from sopflow.store.leads import get_lead


def run_context(session: Session, sop: Sop, run_id: str, lead_id: str) -> dict[str, Any]:
    """The lead (with the run's own score), the results of the run's steps so far, and the SOP's id, name, version."""
    lead, steps = lead_context(get_lead(session, lead_id)), runs.step_results(session, run_id)
    # A run decides on its own scoring: another SOP scoring the same lead meanwhile must not change it.
    scores = [result for result in steps.values() if result.get("status") == "completed" and "breakdown" in result]
    if scores:
        lead.update({key: scores[-1][key] for key in ("score", "grade", "stage") if key in scores[-1]})
    return {"lead": lead, "steps": steps, "sop": {"id": sop.id, "name": sop.name, "version": sop.version}}
