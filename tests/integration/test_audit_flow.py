"""The weekly audit against a real Prefect server: over a seeded history with one planted departure of each kind
(one of them a flow run Prefect reports as crashed), the audit run finds each, and nothing in clean runs, stores
the findings and publishes the summary, the findings table and the KPI chart as artifacts."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import delete, select

from sopflow.store.models import Approval, Audit, AuditFinding, Lead, OutboxEmail, SopRun, StepRecord, Wait
from tests.audit_history import PLANTED, plant
from tests.support import cli_json, flow_state, start_deployment, wait_for

pytestmark = pytest.mark.server


def crashed_flow_run(up) -> str:
    """A flow run that Prefect reports as crashed (its process died): made through the API, as a worker would."""
    with up.api() as api:
        flow = api.post("/flows/", json={"name": "audit-test-crashed"}).json()
        flow_run = api.post("/flow_runs/", json={"flow_id": flow["id"], "name": "crashed-run"}).json()
        crashed = api.post(f"/flow_runs/{flow_run['id']}/set_state",
                           json={"state": {"type": "CRASHED", "name": "Crashed"}, "force": True})
        assert crashed.status_code in (200, 201), crashed.text
    return flow_run["id"]


@pytest.fixture(scope="module")
def history(sopflow_up) -> Iterator[dict]:
    """The planted history in `sopflow up`'s store; removed afterwards, with the audits, so other tests see none."""
    with sopflow_up.store() as session, session.begin():
        planted = plant(session, datetime.now(timezone.utc), crashed_flow_run(sopflow_up))
    try:
        yield planted
    finally:
        run_ids = [planted.pop("clean"), *planted.values()]
        with sopflow_up.store() as session, session.begin():
            ids = [run_id for group in run_ids for run_id in (group if isinstance(group, list) else [group])]
            leads = list(session.scalars(select(SopRun.lead_id).where(SopRun.id.in_(ids))))
            session.execute(delete(AuditFinding))
            session.execute(delete(Audit))
            for table in (StepRecord, Approval, OutboxEmail, Wait):
                session.execute(delete(table).where(table.sop_run_id.in_(ids)))
            session.execute(delete(SopRun).where(SopRun.lead_id.in_(leads)))
            session.execute(delete(Lead).where(Lead.id.in_(leads)))


def artifacts(up, flow_run_id: str) -> dict[str, dict]:
    with up.api() as api:
        found = api.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]}}}).json()
    return {artifact["key"]: artifact for artifact in found}


def test_the_weekly_audit_finds_each_planted_departure_and_publishes_its_artifacts(sopflow_up, history):
    flow_run_id = start_deployment(sopflow_up, "sopflow-audit/weekly")
    wait_for(lambda: flow_state(sopflow_up, flow_run_id) == "COMPLETED", "the audit run to complete")
    with sopflow_up.api() as api:
        run = api.get(f"/flow_runs/{flow_run_id}").json()
    assert run["name"].startswith("audit-all-") and run["state"]["message"].startswith("Audited ")

    label = {run_id: name for name, run_id in history.items() if name != "clean"}
    with sopflow_up.store() as session:
        audit = session.scalars(select(Audit).where(Audit.flow_run_id == flow_run_id)).one()
        findings = list(session.scalars(select(AuditFinding).where(AuditFinding.audit_id == audit.id)))
    found: dict[str, set] = {}
    for finding in findings:
        if finding.sop_run_id in label or finding.sop_run_id in history["clean"]:
            found.setdefault(label.get(finding.sop_run_id, "CLEAN"), set()).add(
                (finding.kind, finding.step_id, finding.person))
    assert found == PLANTED  # the other tests' runs may add findings of their own; the clean runs give none
    crashed = next(f for f in findings if f.sop_run_id == history["crashed"])
    assert crashed.evidence.endswith("is Crashed while the store says the run is running")

    published = artifacts(sopflow_up, flow_run_id)
    assert {"audit-summary", "audit-findings", "kpi-lead-qualification"} <= set(published)
    assert published["audit-summary"]["type"] == "markdown"
    assert "### Adherence per SOP" in published["audit-summary"]["data"]
    rows = json.loads(published["audit-findings"]["data"])
    assert {row["run"] for row in rows} >= set(label)
    assert "@" not in str(rows)  # lead ids only: no lead's address in an artifact
    chart = published["kpi-lead-qualification"]["data"]  # Markdown: the verdict, then the chart as an image
    svg = base64.b64decode(re.search(r"\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", chart)[1]).decode()
    assert svg.startswith("<svg") and "lead-qualification: qualified leads per quarter" in svg


def test_sopflow_audit_asks_prefect_about_runs_under_way(sopflow_up, history):
    audited = cli_json(sopflow_up.env, "audit", "--sop", "lead-qualification")
    crashed = [f for f in audited["findings"] if f["run"] == history["crashed"]]
    with sopflow_up.store() as session:
        flow_run_id = session.get_one(SopRun, history["crashed"]).flow_run_id
    assert [(f["kind"], f["flow_run"]) for f in crashed] == [("failed", flow_run_id)]
    assert "is Crashed" in crashed[0]["evidence"]
