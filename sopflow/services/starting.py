"""Starting SOP runs: a Prefect flow run for every claimed SOP run that has none yet.

The store's unique (SOP, lead) row is claimed first (`sopflow.store.leads`); the flow run is
then created with an idempotency key, so a crash between the two, a repeated submission or a
concurrent starter all end with the same single flow run.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from typing import Any

import httpx
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound, PrefectException
from sqlalchemy import select

from sopflow.catalog import sops_started_by
from sopflow.leads import LeadIn
from sopflow.services.connection import PrefectUnavailable, prefect_api
from sopflow.store.db import transaction
from sopflow.store.leads import ClaimedRun, store_leads
from sopflow.store.models import SopRun

log = logging.getLogger(__name__)
UNREACHABLE = (httpx.HTTPError, PrefectException, PrefectUnavailable)


def deployment_name(sop_id: str) -> str:
    """`<flow>/<deployment>` as Prefect names it: both are the SOP id."""
    return f"{sop_id}/{sop_id}"


def start_claimed(
    lead_id: str | None = None, limit: int | None = None, sop_ids: Collection[str] | None = None
) -> list[ClaimedRun]:
    """Create the flow runs of claimed SOP runs that have none: the lead's (all returned), or the oldest `limit`.

    `sop_ids` limits the runs considered to those SOPs (the ones deployed). Runs of an SOP that
    has no deployment are left claimed, with a warning. Raises one of UNREACHABLE when Prefect
    cannot be reached; runs started until then keep their flow run.
    """
    with transaction() as session:
        query = select(SopRun.id, SopRun.sop_id, SopRun.lead_id, SopRun.flow_run_id).order_by(SopRun.created_at)
        query = query.where(SopRun.lead_id == lead_id) if lead_id else query.where(SopRun.flow_run_id.is_(None), SopRun.state == "pending")
        if sop_ids is not None:
            query = query.where(SopRun.sop_id.in_(sop_ids))
        claimed = session.execute(query.limit(limit)).all()
    if all(flow_run_id for *_, flow_run_id in claimed):
        return [ClaimedRun(sop, run, flow_run) for run, sop, _, flow_run in claimed]
    started, deployments = [], {}
    with prefect_api(), get_client(sync_client=True) as client:
        for run_id, sop_id, run_lead, flow_run_id in claimed:
            if flow_run_id is None:
                if sop_id not in deployments:
                    deployments[sop_id] = _deployment_id(client, sop_id)
                if deployments[sop_id] is None:
                    continue
                flow_run = client.create_flow_run_from_deployment(
                    deployments[sop_id], parameters={"lead_id": run_lead}, idempotency_key=f"sopflow:{sop_id}:{run_lead}"
                )
                flow_run_id = _record(run_id, str(flow_run.id))
            started.append(ClaimedRun(sop_id, run_id, flow_run_id))
    return started


def _deployment_id(client: Any, sop_id: str) -> Any:
    try:
        return client.read_deployment_by_name(deployment_name(sop_id)).id
    except ObjectNotFound:
        log.warning("SOP %s has no deployment in Prefect; its claimed runs wait until `sopflow up` serves it", sop_id)
        return None


def _record(run_id: str, flow_run_id: str) -> str:
    with transaction() as session:
        run = session.get_one(SopRun, run_id)
        run.flow_run_id = run.flow_run_id or flow_run_id
        return run.flow_run_id


def submit_lead(lead_in: LeadIn) -> dict[str, Any]:
    """Store the lead (once per email), claim its new-lead SOP runs and start them; ids only, no personal data.

    If Prefect cannot be reached the lead and its claimed runs stay stored, and the runs start
    when `sopflow up`'s dispatcher next reaches Prefect.
    """
    admitted = store_leads([lead_in], sops_started_by("new_lead"))[0]
    outcome = admitted.as_json()
    try:
        outcome["runs"] = [vars(run) for run in start_claimed(admitted.lead_id)]
    except UNREACHABLE as exc:
        outcome["not_started"] = f"SOP runs not started ({type(exc).__name__}: {exc}); they start when `sopflow up` runs"
    return outcome
