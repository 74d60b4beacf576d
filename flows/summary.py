"""The run's summary in Prefect: one table artifact per flow run, created on its first publish and updated in place.

Without a key, so it shows on the run's Artifacts tab and not as a collection of its own on the global Artifacts
page. A resumed run (a new process) finds its table by flow run id; the run publishes when it suspends and when
it ends, not per step.
"""

from __future__ import annotations

import json
from uuid import UUID

import httpx
from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import ArtifactCreate, ArtifactUpdate
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterType
from prefect.runtime import flow_run

from sopflow.plan import Plan
from sopflow.run_summary import run_summary
from sopflow.store.db import transaction


def publish_summary(plan: Plan, run_id: str, lead_id: str) -> None:
    """Show run `run_id`'s steps so far as its flow run's table; when Prefect cannot take it, log why and go on."""
    with transaction() as session:
        data = json.dumps(run_summary(session, plan, run_id))
    flow_run_id = UUID(flow_run.get_id())
    mine = ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id]),
                          type=ArtifactFilterType(any_=["table"]))
    try:
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(artifact_filter=mine, limit=1)
            if found:
                client.update_artifact(found[0].id, ArtifactUpdate(data=data))
            else:
                client.create_artifact(ArtifactCreate(
                    type="table", data=data, flow_run_id=flow_run_id,
                    description=f"Run summary: {plan.sop.name} for lead {lead_id}"))
    except httpx.HTTPError as exc:  # the store keeps the history; the next publish tries again
        get_run_logger().warning("The run summary artifact was not updated (%s); `sopflow lead show %s` lists the "
                                 "same steps.", type(exc).__name__, lead_id)
