"""The housekeeping flow, served every minute: wakes waiting runs, starts runs still unstarted."""

from __future__ import annotations

from prefect import flow, get_run_logger

from deployments.dispatch import start_pending
from flows.waiting import wake_due_runs


@flow(name="sopflow-housekeeping", persist_result=False)
def housekeeping() -> dict[str, int]:
    """Resume runs whose `wait` is over, and create the flow runs of SOP runs claimed without one."""
    woken, started = wake_due_runs(), start_pending()
    if woken or started:
        get_run_logger().info("Woke %d waiting run(s); started %d claimed run(s).", len(woken), len(started))
    return {"woken": len(woken), "started": len(started)}
