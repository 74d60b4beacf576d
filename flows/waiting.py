"""Wait steps and the waker: a waiting run is suspended (no process) until its wake time passes."""

from __future__ import annotations

import httpx
from prefect import get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.exceptions import PrefectException
from prefect.flow_runs import resume_flow_run, suspend_flow_run

from sopflow.services.connection import prefect_api
from sopflow.store import waits
from sopflow.store.db import transaction
from tasks.records import Result, StepCall
from tasks.wait import wake_time, woke


def await_wake(call: StepCall) -> Result:
    """Suspend until the wake time; the waker flow (or `sopflow wake`) resumes the run."""
    until = wake_time.with_options(name=call.step_id, task_run_name=f"{call.step_id} (until)")
    planned = until(call)
    if planned["status"] != "waiting":
        return planned
    slug, suspensions = call.step_id.replace("_", "-"), 0
    while not planned["due"]:
        get_run_logger().info("Step %s waits until %s UTC.", call.step_id, planned["wake_at"])
        create_markdown_artifact(
            key=f"wait-{slug}",
            markdown=f"**{call.step_id}** waits until **{planned['wake_at']}** (UTC), then the run goes on.",
            description=f"Waiting until {planned['wake_at']}",
        )
        # A key already answered returns at once when the run re-executes; the loop then
        # checks the wake time again and suspends under the next key if it is not due.
        suspend_flow_run(key=f"{slug}-wait-{suspensions}")
        suspensions += 1
        planned = until(call)
    return woke.with_options(name=call.step_id, task_run_name=f"{call.step_id} (woke)")(call)


def wake_due_runs() -> list[str]:
    """Resume every suspended run whose wait is over, through sopflow's Prefect server; return their flow run ids.

    Asks the store first, so a round with nothing due costs one query and no Prefect settings.
    """
    with transaction() as session:
        due = [(run.flow_run_id, wait.step_id) for wait, run in waits.due(session)]
    if not due:
        return []
    resumed = []
    with prefect_api():  # set here: a caller's thread may not share the main thread's Prefect settings
        for flow_run_id, step_id in due:
            try:
                resume_flow_run(flow_run_id, _sync=True)  # sync even when a caller runs an event loop
                resumed.append(flow_run_id)
            except (PrefectException, httpx.HTTPError, RuntimeError):
                pass  # not suspended yet (still running or already resumed): the next round tries again
    return resumed
