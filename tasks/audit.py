"""The audit run's tasks: audit and store the findings, then publish them as artifacts of the run."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from sopflow.audit import AuditResult
from sopflow.audit_report import finding_rows, headline, kpi_markdown, summary_markdown
from sopflow.audit_run import run_audit
from sopflow.kpi import kpi
from sopflow.loader import LoadedSop
from sopflow.store import runs
from sopflow.store.db import transaction


@task(cache_policy=NO_CACHE, task_run_name="audit runs")
def audit_window(sops: dict[str, LoadedSop], since: datetime, until: datetime, sop_id: str | None) -> AuditResult:
    """Compare every run of the window with the SOP version it followed; store the audit and its findings."""
    return run_audit(sops, since, until, sop_id, flow_run.get_id())[1]


@task(cache_policy=NO_CACHE, task_run_name="artifacts")
def publish(sops: dict[str, LoadedSop], result: AuditResult) -> list[dict[str, Any]]:
    """The summary (Markdown), the findings (a table) and each KPI's trend chart (Markdown with the picture) as
    artifacts; the KPIs."""
    with transaction() as session:
        kpis = [kpi(session, loaded) for sop_id, loaded in sorted(sops.items())
                if loaded.sop.objective.measure is not None and result.sop_id in (None, sop_id)]
        flow_runs = runs.flow_runs_of(session, {f.sop_run_id for f in result.findings if f.sop_run_id})
    create_markdown_artifact(key="audit-summary", markdown=summary_markdown(result, kpis), description=headline(result))
    create_table_artifact(key="audit-findings", table=finding_rows(result, flow_runs) or [{"finding": "none"}],
                          description=f"Findings of the audit: {len(result.findings)}")
    for row in kpis:
        create_markdown_artifact(key=f"kpi-{row['sop']}", markdown=kpi_markdown(row),
                                 description=f"KPI trend of {row['sop']}: {row['metric']}")
    return kpis
