"""The housekeeping flow, served every minute: wakes waiting runs, starts runs still unstarted."""

from __future__ import annotations

from prefect import flow, get_run_logger

from flows.waiting import wake_due_runs
from sopflow.logs import redact_everywhere
from sopflow.services.starting import start_claimed


CLAIMED_PER_RUN = 50  # the rest wait for the next minute (or `sopflow up`'s dispatcher starts them)


@flow(name="sopflow-housekeeping", persist_result=False)
def housekeeping() -> dict[str, int]:
    """Resume runs whose `wait` is over, and create the flow runs of SOP runs claimed without one."""
    redact_everywhere()
    woken, started = wake_due_runs(), start_claimed(limit=CLAIMED_PER_RUN)
    if woken or started:
        get_run_logger().info("Woke %d waiting run(s); started %d claimed run(s).", len(woken), len(started))
    return {"woken": len(woken), "started": len(started)}
