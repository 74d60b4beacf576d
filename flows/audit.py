"""The audit flow: weekly (and on demand), every run of the window compared with the SOP version it followed."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from sopflow.audit_report import headline
from sopflow.catalog import load_all
from sopflow.logs import redact_everywhere
from sopflow.suggest import did_you_mean
from tasks.audit import audit_window, publish

WINDOW = timedelta(days=7)


def _run_name() -> str:
    """audit-all-2026-11-23, or audit-<sop id>-2026-11-23 for one SOP's."""
    return f"audit-{flow_run.parameters.get('sop_id') or 'all'}-{datetime.now(timezone.utc):%Y-%m-%d}"


@flow(name="sopflow-audit", flow_run_name=_run_name, persist_result=False)
def audit_runs(since: date | None = None, sop_id: str | None = None) -> State:
    """Audit the runs created since `since` (default: the last 7 days) and every open one, of one SOP or all.

    Findings and adherence are stored for `sopflow report` and published as artifacts: `audit-summary`,
    `audit-findings` and one `kpi-<sop>` chart per SOP with a measured objective.
    """
    redact_everywhere()
    until = datetime.now(timezone.utc)
    start = datetime.combine(since, time(), tzinfo=timezone.utc) if since else until - WINDOW
    sops = load_all()
    if sop_id is not None and sop_id not in sops:
        reason = f"No SOP is called {sop_id!r}{did_you_mean(sop_id, sops)}; leave sop_id empty to audit every SOP."
        get_run_logger().error(reason)
        return Failed(message=reason)
    result = audit_window(sops, start, until, sop_id)
    publish(sops, result)
    get_run_logger().info("%s.", headline(result))
    return Completed(message=headline(result))
