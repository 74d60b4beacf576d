"""Start the new-lead SOPs for a lead: exactly one flow run per (SOP, lead).

The store's unique (SOP, lead) row is claimed first; the flow run is then created with
an idempotency key, so a crash between the two, a repeated submission or a concurrent
one all end with the same single flow run.
"""

from __future__ import annotations

from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectException
from sqlalchemy import select

from deployments.connection import PrefectUnavailable, prefect_api
from sopflow.catalog import load_all
from sopflow.leads import LeadIn
from sopflow.store import runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import SopRun


def deployment_name(sop_id: str) -> str:
    """`<flow>/<deployment>` as Prefect names it: both are the SOP id."""
    return f"{sop_id}/{sop_id}"


def sops_started_by(event: str, status: str | None = None) -> list[str]:
    """The SOPs a lead event starts: `new_lead`, or `lead_status` with the lead's new status."""
    return sorted(sop_id for sop_id, loaded in load_all().items() if loaded.sop.trigger.starts_on(event, status))


def submit_lead(lead_in: LeadIn) -> dict[str, Any]:
    """Store the lead (once per email) and start its SOP runs; return ids, not personal data.

    If Prefect cannot be reached the lead and its claimed runs stay stored, and the runs
    start when `sopflow up` next starts.
    """
    with transaction() as session:
        lead, created = add_lead(session, lead_in)
        for sop_id in sops_started_by("new_lead"):
            runs.ensure_run(session, sop_id, lead.id)
    outcome: dict[str, Any] = {"id": lead.id, "created": created}
    try:
        with prefect_api():
            outcome["runs"] = start_pending(lead.id)
    except (httpx.HTTPError, PrefectException, PrefectUnavailable) as exc:
        outcome["runs"] = []
        outcome["not_started"] = f"SOP runs not started ({exc}); they start when `sopflow up` runs"
    return outcome


def start_pending(lead_id: str | None = None) -> list[dict[str, Any]]:
    """Create the flow run of every SOP run that has none yet (for one lead, or all)."""
    with transaction() as session:
        query = select(SopRun).order_by(SopRun.created_at)
        query = query.where(SopRun.lead_id == lead_id) if lead_id else query.where(SopRun.flow_run_id.is_(None))
        claimed = [(r.id, r.sop_id, r.lead_id, r.flow_run_id) for r in session.scalars(query)]
    if all(flow_run_id for *_, flow_run_id in claimed):
        return [{"sop": sop, "sop_run_id": run, "flow_run_id": fr} for run, sop, _, fr in claimed]
    started = []
    with get_client(sync_client=True) as client:
        for run_id, sop_id, run_lead, flow_run_id in claimed:
            if flow_run_id is None:
                deployment = client.read_deployment_by_name(deployment_name(sop_id))
                flow_run = client.create_flow_run_from_deployment(
                    deployment.id, parameters={"lead_id": run_lead}, idempotency_key=f"sopflow:{sop_id}:{run_lead}"
                )
                flow_run_id = str(flow_run.id)
                with transaction() as session:
                    run = session.get_one(SopRun, run_id)
                    run.flow_run_id = run.flow_run_id or flow_run_id
            started.append({"sop": sop_id, "sop_run_id": run_id, "flow_run_id": flow_run_id})
    return started
