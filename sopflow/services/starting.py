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
from sopflow.store.models import SopRun, utcnow

log = logging.getLogger(__name__)
UNREACHABLE = (httpx.HTTPError, PrefectException, PrefectUnavailable)
BULK_LIMIT = 100  # flow runs Prefect creates in one request at most
SQLITE_BUSY = "database is locked"  # Prefect's SQLite database was busy: what its server retries too


def deployment_name(sop_id: str) -> str:
    """`<flow>/<deployment>` as Prefect names it: both are the SOP id."""
    return f"{sop_id}/{sop_id}"


def start_claimed(
    lead_id: str | None = None, limit: int | None = None, sop_ids: Collection[str] | None = None
) -> list[ClaimedRun]:
    """Create the flow runs of claimed SOP runs that have none: the lead's (all returned), or the oldest `limit`.

    `sop_ids` limits the runs considered to those SOPs (the ones deployed). Runs of an SOP that
    has no deployment are left claimed, with a warning. Each SOP's runs are created in one request per
    BULK_LIMIT (one transaction in Prefect's database, not one each). Raises one of UNREACHABLE when
    Prefect cannot be reached; runs started until then keep their flow run.
    """
    with transaction() as session:
        query = select(SopRun.id, SopRun.sop_id, SopRun.lead_id, SopRun.flow_run_id).order_by(SopRun.created_at)
        query = query.where(SopRun.lead_id == lead_id) if lead_id else query.where(SopRun.flow_run_id.is_(None), SopRun.state == "pending")
        if sop_ids is not None:
            query = query.where(SopRun.sop_id.in_(sop_ids))
        claimed = session.execute(query.limit(limit)).all()
    waiting: dict[str, list[tuple[str, str]]] = {}
    for run_id, sop_id, run_lead, flow_run_id in claimed:
        if flow_run_id is None:
            waiting.setdefault(sop_id, []).append((run_id, run_lead))
    created: dict[str, str] = {}
    try:
        if waiting:
            with prefect_api(), get_client(sync_client=True) as client:
                for sop_id, runs in waiting.items():
                    deployment_id = _deployment_id(client, sop_id)
                    if deployment_id is None:
                        continue
                    for start in range(0, len(runs), BULK_LIMIT):
                        created.update(_create_flow_runs(client, deployment_id, sop_id, runs[start:start + BULK_LIMIT]))
    finally:
        created = _record(created)  # what Prefect created is kept even when a later request failed
    return [ClaimedRun(sop_id, run_id, flow_run_id or created[run_id])
            for run_id, sop_id, _, flow_run_id in claimed if flow_run_id or run_id in created]


def scheduled_backlog(sop_ids: Collection[str]) -> int:
    """How many flow runs of these SOPs are due and wait in Prefect for a runner to take them (new ones and resumed
    ones; not a cron SOP's future runs)."""
    due = {"state": {"type": {"any_": ["SCHEDULED"]}}, "next_scheduled_start_time": {"before_": utcnow().isoformat()}}
    with prefect_api(), get_client(sync_client=True) as client:
        answer = client.request("POST", "/flow_runs/count", json={"flows": {"name": {"any_": list(sop_ids)}},
                                                                  "flow_runs": due})
    return int(answer.json())


def _create_flow_runs(client: Any, deployment_id: Any, sop_id: str, runs: list[tuple[str, str]]) -> dict[str, str]:
    """Create the flow runs of `runs` ((SOP run id, lead id)) from the deployment in one request; return the flow
    run id of each SOP run Prefect created (or had: the idempotency key names the SOP and the lead)."""
    answer = client.request("POST", "/deployments/{id}/create_flow_run/bulk", path_params={"id": deployment_id},
                            json=[{"parameters": {"lead_id": lead}, "idempotency_key": f"sopflow:{sop_id}:{lead}"}
                                  for _, lead in runs])
    made, refused = {}, []
    for (run_id, _), result in zip(runs, answer.json()["results"]):
        if result["status"] == "CREATED":
            made[run_id] = result["flow_run_id"]
        elif SQLITE_BUSY not in str(result["error"]):  # busy: Prefect answers a lone create 503 and it is retried
            refused.append(str(result["error"]).splitlines()[0][:200])  # the reason, not the statement it quotes
    if refused:  # left claimed, as the busy ones: the next round tries them again
        log.warning("Prefect did not create %d of %d flow run(s) of %s (%s); they are tried again", len(refused),
                    len(runs), sop_id, refused[0])
    return made


def _deployment_id(client: Any, sop_id: str) -> Any:
    try:
        return client.read_deployment_by_name(deployment_name(sop_id)).id
    except ObjectNotFound:
        log.warning("SOP %s has no deployment in Prefect; its claimed runs wait until `sopflow up` serves it", sop_id)
        return None


def _record(created: dict[str, str]) -> dict[str, str]:
    """Keep each SOP run's new flow run id (one already kept wins); return the kept ids."""
    if not created:
        return {}
    with transaction() as session:
        for run in session.scalars(select(SopRun).where(SopRun.id.in_(created))):
            run.flow_run_id = run.flow_run_id or created[run.id]
            created[run.id] = run.flow_run_id
    return created


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
