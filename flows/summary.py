"""The run's summary in Prefect: one table artifact per flow run, created on its first publish and updated in place.

Without a key, so it shows on the run's Artifacts tab and not as a collection of its own on the global Artifacts
page. Its id is kept on the run's row in the store, so a resumed run (a new process) updates it with one request;
the run publishes when it suspends and when it ends, not per step.
"""

from __future__ import annotations

import json
from uuid import UUID

import httpx
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate
from prefect.runtime import flow_run

from sopflow.plan import Plan
from sopflow.run_summary import run_summary
from sopflow.store.db import transaction
from sopflow.store.models import SopRun


def publish_summary(plan: Plan, run_id: str, lead_id: str) -> None:
    """Show run `run_id`'s steps so far as its flow run's table; when Prefect cannot take it, log why and go on."""
    with transaction() as session:
        data = json.dumps(run_summary(session, plan, run_id))
        known = session.get_one(SopRun, run_id).summary_artifact_id
    try:
        with get_client(sync_client=True) as client:
            if known and _updated(client, known, data):
                return
            made = client.create_artifact(ArtifactCreate(
                type="table", data=data, flow_run_id=UUID(flow_run.get_id()),
                description=f"Run summary: {plan.sop.name} for lead {lead_id}"))
    except httpx.HTTPError as exc:  # the store keeps the history; the next publish tries again
        get_run_logger().warning("The run summary artifact was not updated (%s); `sopflow lead show %s` lists the "
                                 "same steps.", type(exc).__name__, lead_id)
        return
    with transaction() as session:  # outside the Prefect call: no store lock held while Prefect answers
        session.get_one(SopRun, run_id).summary_artifact_id = str(made.id)


def _updated(client, artifact_id: str, data: str) -> bool:
    """Update the kept artifact; False when it is gone (deleted in the UI), so a new one is made."""
    try:
        client.update_artifact(UUID(artifact_id), ArtifactUpdate(data=data))
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 404:
            raise
        return False
    return True
