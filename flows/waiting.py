"""Wait steps and the waker: a waiting run is suspended (no process) until its wake time passes."""

from __future__ import annotations

from datetime import datetime

import httpx
from prefect.exceptions import PrefectException
from prefect.flow_runs import resume_flow_run

from flows.suspend import suspend
from sopflow.services.connection import prefect_api
from sopflow.state_messages import waiting_until
from sopflow.store import waits
from sopflow.store.db import transaction
from tasks.records import Result, StepCall
from tasks.step_runs import report, run_step
from tasks.wait import wake_time, woke


def await_wake(call: StepCall) -> Result:
    """Suspend until the wake time; the waker flow (or `sopflow wake`) resumes the run.

    The step's one task run is its waking (or its skip); the suspended run's state says until when it waits.
    """
    planned = wake_time(call)
    if planned["status"] != "waiting":
        return run_step(report, call, planned)
    slug, suspensions = call.step_id.replace("_", "-"), 0
    while not planned["due"]:
        # A key already answered returns at once when the run re-executes; the loop then
        # checks the wake time again and suspends under the next key if it is not due.
        suspend(waiting_until(datetime.fromisoformat(planned["wake_at"])), f"{slug}-wait-{suspensions}")
        suspensions += 1
        planned = wake_time(call)
    return run_step(woke, call)


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
