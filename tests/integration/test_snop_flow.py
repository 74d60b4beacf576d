"""S&OP against a real Prefect server: the monthly deployment's run publishes the plan as artifacts (Markdown, table,
chart), waits for sales and then operations in forms that show the plan, refuses a signer off the role's roster, and
completes only once both roles signed (one plan per month: tests/unit/test_snop.py)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import delete, select

from sopflow.cli.approvals import send_answer
from sopflow.store.models import Lead, SnopPlan, SopRun, StepRecord
from tests.support import environment, flow_state, form_description, sopflow, wait_for

pytestmark = pytest.mark.server
MONTH = "2031-01"  # far ahead: no other test's deal closes in the plan's months
T0 = datetime(2030, 12, 1, tzinfo=timezone.utc)


def start(up, name: str, parameters: dict) -> str:
    """Start a flow run of deployment `flow/deployment` with `parameters`, as the UI's Run button does; its id."""
    def attempt() -> httpx.Response | None:
        try:
            with up.api() as api:
                found = api.get(f"/deployments/name/{name}")
                created = api.post(f"/deployments/{found.json()['id']}/create_flow_run",
                                   json={"parameters": parameters})
        except httpx.TimeoutException:
            return None
        return None if created.status_code == 503 else created  # Prefect's busy SQLite: try again

    created = wait_for(attempt, "Prefect to take the run")
    assert created.status_code == 201, created.text
    return created.json()["id"]


@pytest.fixture
def pipeline(sopflow_up) -> Iterator[None]:
    """Two open opportunities of negotiation-closing (their flow runs made up, so nothing starts them): 2031-01 at
    contract_email (50,000 EUR x 0.7 -> 280 h), 2031-02 at deal_terms (250,000 EUR x 0.4 -> 800 h); the seed capacity
    file gives 8 h per 1,000 EUR and 320 h a month. Removed afterwards."""
    leads, run_ids = [], []
    with sopflow_up.store() as session, session.begin():
        for value, close, later in ((50000, "2031-01", ["contract_email"]), (250000, "2031-02", [])):
            lead = Lead(email=f"{uuid.uuid4().hex[:8]}@secret.example", name="Secret Buyer", status="opportunity")
            session.add(lead)
            session.flush()
            run = SopRun(sop_id="negotiation-closing", lead_id=lead.id, flow_run_id=str(uuid.uuid4()),
                         state="waiting", started_at=T0)
            session.add(run)
            session.flush()
            session.add(StepRecord(sop_run_id=run.id, step_id="deal_terms", kind="approval", status="completed",
                                   started_at=T0, result={"decision": "approve", "approver": "Alex Kim",
                                                          "deal_value": value, "expected_close": close}))
            session.flush()
            session.add_all(StepRecord(sop_run_id=run.id, step_id=step, kind="email", status="completed",
                                       started_at=T0) for step in later)
            leads.append(lead.id)
            run_ids.append(run.id)
    try:
        yield
    finally:
        with sopflow_up.store() as session, session.begin():
            session.execute(delete(StepRecord).where(StepRecord.sop_run_id.in_(run_ids)))
            session.execute(delete(SopRun).where(SopRun.id.in_(run_ids)))
            session.execute(delete(Lead).where(Lead.id.in_(leads)))
            session.execute(delete(SnopPlan).where(SnopPlan.month == MONTH))


def sign(up, run_id: str, key: str, signer: str) -> str:
    """Answer the sign-off form waiting under `key` as the UI does, once shown; the form's description."""
    description = form_description(up, run_id, key)
    wait_for(lambda: flow_state(up, run_id) == "PAUSED", f"the run to wait for {key}")
    with environment(up.env):
        send_answer(run_id, {"signer": signer, "decision": "approve", "notes": ""})
    return description


def test_the_plan_waits_for_both_roles_and_refuses_anyone_off_the_roster(sopflow_up, pipeline):
    up = sopflow_up
    run_id = start(up, "sopflow-snop/monthly", {"month": MONTH})
    sales = sign(up, run_id, "sales-0", "Omar Haddad")  # operations, not sales
    assert "**Who may answer (sales):** Maria Lopez" in sales
    assert "- 2031-02: demand 800 h exceeds capacity 320 h by 480 h (150%)" in sales
    assert "| 2031-01 | 1 | 35,000 | 280 | 320 | -40 | no |" in sales and "data:image/svg+xml;base64," in sales
    assert "secret" not in sales.lower()  # no lead's name or email in the plan
    with up.api() as api:
        flow_run = api.get(f"/flow_runs/{run_id}").json()
        artifacts = api.post("/artifacts/filter", json={"artifacts": {"key": {"any_": [
            f"snop-{MONTH}", f"snop-{MONTH}-table"]}}}).json()
    assert flow_run["name"] == f"snop-{MONTH}"
    assert sorted(a["type"] for a in artifacts) == ["markdown", "table"]
    assert all(a["flow_run_id"] == run_id for a in artifacts)
    kinds = {a["type"]: a for a in artifacts}
    assert "2031-02: demand 800 h exceeds capacity 320 h by 480 h (150%)" in kinds["markdown"]["data"]
    assert json.loads(kinds["table"]["data"])[1] == {"month": "2031-02", "weighted demand (h)": 800,
                                                     "capacity (h)": 320, "gap (h)": 480, "over capacity": "yes"}
    assert "(data:image/svg+xml;base64," in kinds["markdown"]["data"]  # the chart, drawn in the UI

    again = sign(up, run_id, "sales-1", "maria lopez")  # asked again, saying why
    assert "Previous answer not accepted: 'Omar Haddad' is not on the sales roster (Maria Lopez)" in again
    operations = sign(up, run_id, "operations-0", "Omar Haddad")
    assert "**Who may answer (operations):** Omar Haddad" in operations
    assert "waits for operations sign-off; approved by Maria Lopez (sales)" in operations
    assert wait_for(lambda: flow_state(up, run_id) == "COMPLETED", "the plan run to complete")
    with up.api() as api:
        message = api.get(f"/flow_runs/{run_id}").json()["state"]["message"]
    assert message == (f"S&OP {MONTH} signed off by Maria Lopez (sales) and Omar Haddad (operations); "
                       "1 month over capacity")
    with up.store() as session:
        plan = session.scalar(select(SnopPlan).where(SnopPlan.month == MONTH))
        assert (plan.state, plan.flow_run_id, plan.sales_signed_by, plan.operations_signed_by) == (
            "signed", run_id, "Maria Lopez", "Omar Haddad")
    shown = json.loads(sopflow(up.env, "snop", "--month", MONTH, "--json"))
    assert (shown["state"], shown["over"], shown["signed"]["operations"]["by"]) == ("signed", ["2031-02"],
                                                                                     "Omar Haddad")
