"""Production's layout: every SOP flow and sopflow's own flows deployed into a process work pool, run by
`prefect worker start --pool NAME` (or the warm `sopflow worker`) on any number of machines."""

from __future__ import annotations

from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound
from prefect.workers.process import ProcessWorker

from deployments.serve import sop_deployments
from sopflow.services.connection import prefect_api, require_prefect


def deploy_to_pool(pool: str) -> list[str]:
    """Create the process work pool `pool` unless it exists, and deploy every SOP and chore flow into it; return
    the deployments' names. Their entrypoints are module paths, so a worker loads the flows from the installed
    package. Refuses a pool of another type."""
    with prefect_api() as url, get_client(sync_client=True) as client:
        require_prefect(url)
        try:
            found = client.read_work_pool(pool)
        except ObjectNotFound:
            found = client.create_work_pool(WorkPoolCreate(
                name=pool, type=ProcessWorker.type, base_job_template=ProcessWorker.get_default_base_job_template(),
                description="sopflow's SOP flows; start workers with `prefect worker start --pool " + pool + "`"))
        if found.type != ProcessWorker.type:
            raise RuntimeError(f"work pool {pool!r} is a {found.type!r} pool; sopflow deploys into a process pool: "
                               "name a new pool or a process one")
        deployments = sop_deployments()
        for deployment in deployments:
            deployment.apply(work_pool_name=pool)
    return [deployment.full_name for deployment in deployments]
