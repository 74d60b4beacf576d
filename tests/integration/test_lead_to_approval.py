"""From a new lead to a completed run through approval pauses, against a real Prefect server."""

from __future__ import annotations

import uuid

import httpx
import pytest
from sqlalchemy import func, select

from sopflow.store.models import Approval, Lead, OutboxEmail, SopRun, StepRecord
from tests.support import cli_json, run_cli, wait_for

pytestmark = pytest.mark.server
SOP = "lead-qualification"


def add_lead(up, **fields) -> dict:
    fields = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "name": "Jane Doe", "company": "Acme",
              "title": "VP Sales", "employees": "500", "industry": "software", "source": "website", **fields}
    args = [part for key, value in fields.items() for part in (f"--{key}", value)]
    return cli_json(up.env, "lead", "add", *args)


def sop_run(up, lead_id: str, sop: str = SOP) -> SopRun | None:
    with up.store() as session:
        return session.scalar(select(SopRun).where(SopRun.lead_id == lead_id, SopRun.sop_id == sop))


def waiting_ask(up, lead_id: str, step: str, ask: int = 0) -> dict | None:
    rows = cli_json(up.env, "approvals")
    return next((r for r in rows if r["lead_id"] == lead_id and r["step"] == step and r["ask"] == ask), None)


def answer(up, lead_id: str, step: str, approver: str, *extra: str, ask: int = 0) -> None:
    row = wait_for(lambda: waiting_ask(up, lead_id, step, ask), f"{step} ask {ask} to wait for an answer")
    wait_for(lambda: flow_state(up, row["run_id"]) == "PAUSED", "the flow run to be suspended")
    run_cli(up.env, "approve", row["run_id"], "--approver", approver, *extra)


def flow_state(up, flow_run_id: str) -> str:
    return httpx.get(f"{up.api_url}/flow_runs/{flow_run_id}", timeout=10).json()["state"]["type"]


def finished(up, lead_id: str, sop: str = SOP) -> SopRun:
    return wait_for(lambda: (r := sop_run(up, lead_id, sop)) is not None and r.state == "completed" and r,
                    f"the {sop} run to complete", timeout=120)


def step_records(up, run_id: str) -> dict[str, StepRecord]:
    with up.store() as session:
        rows = session.scalars(select(StepRecord).where(StepRecord.sop_run_id == run_id).order_by(StepRecord.id))
        return {r.step_id: r for r in rows}


def test_approved_lead_is_qualified_and_followed_up(sopflow_up):
    lead = add_lead(sopflow_up)
    answer(sopflow_up, lead["id"], "rep_qualification", "Priya Shah", "--notes", "Budget set; Q1 rollout")
    answer(sopflow_up, lead["id"], "manager_approval", "maria lopez")
    run = finished(sopflow_up, lead["id"])

    assert run.outcome == "completed" and run.sop_version == 1 and len(run.sop_hash) == 64
    assert wait_for(lambda: flow_state(sopflow_up, run.flow_run_id) == "COMPLETED", "Prefect to show COMPLETED")
    records = step_records(sopflow_up, run.id)
    assert list(records) == ["score_lead", "send_to_nurture", "rep_qualification", "manager_approval",
                             "follow_up_email", "mark_qualified"]
    assert records["send_to_nurture"].status == "skipped"
    assert records["score_lead"].result["score"] == 90
    assert {b["rule"] for b in records["score_lead"].result["breakdown"]} >= {"Senior title", "Target industry"}
    assert records["manager_approval"].result["approver"] == "Maria Lopez"  # the roster's spelling
    with sopflow_up.store() as session:
        asks = session.scalars(select(Approval).where(Approval.sop_run_id == run.id).order_by(Approval.id)).all()
        assert [(a.step_id, a.decision, a.approver, a.accepted) for a in asks] == [
            ("rep_qualification", "approve", "Priya Shah", True), ("manager_approval", "approve", "Maria Lopez", True)]
        assert asks[0].notes == "Budget set; Q1 rollout" and asks[0].answered_at > asks[0].asked_at
        assert asks[0].due_by is not None
        emails = session.scalars(select(OutboxEmail).where(OutboxEmail.sop_run_id == run.id)).all()
        assert [(e.step_id, e.subject) for e in emails] == [("follow_up_email", "Next steps for Acme")]
        lead_row = session.get(Lead, lead["id"])
        assert (lead_row.status, lead_row.owner, lead_row.score, lead_row.grade) == ("qualified", "Alex Kim", 90, "A")


def test_rejection_follows_on_reject(sopflow_up):
    lead = add_lead(sopflow_up)
    answer(sopflow_up, lead["id"], "rep_qualification", "Alex Kim", "--reject", "--notes", "No budget until 2028")
    run = finished(sopflow_up, lead["id"])

    assert run.outcome == "rejected at rep_qualification"
    records = step_records(sopflow_up, run.id)
    assert list(records) == ["score_lead", "send_to_nurture", "rep_qualification", "disqualify"]
    assert records["rep_qualification"].result["decision"] == "reject"
    with sopflow_up.store() as session:
        assert session.get(Lead, lead["id"]).status == "disqualified"
        assert session.scalar(select(func.count()).select_from(OutboxEmail).where(OutboxEmail.sop_run_id == run.id)) == 0


def test_low_score_goes_to_nurture_without_asking(sopflow_up):
    lead = add_lead(sopflow_up, title="Student", employees="3", industry="retail", source="purchased list")
    run = finished(sopflow_up, lead["id"])

    assert list(step_records(sopflow_up, run.id)) == ["score_lead", "send_to_nurture"]
    with sopflow_up.store() as session:
        assert session.get(Lead, lead["id"]).status == "nurture"
        assert session.scalar(select(func.count()).select_from(Approval).where(Approval.sop_run_id == run.id)) == 0


def test_approver_outside_roster_is_recorded_and_asked_again(sopflow_up):
    lead = add_lead(sopflow_up)
    answer(sopflow_up, lead["id"], "rep_qualification", "Bob Outsider")
    second = wait_for(lambda: waiting_ask(sopflow_up, lead["id"], "rep_qualification", ask=1), "a second ask")

    run = sop_run(sopflow_up, lead["id"])
    with sopflow_up.store() as session:
        first = session.scalar(select(Approval).where(Approval.sop_run_id == run.id, Approval.ask == 0))
        assert (first.approver, first.accepted) == ("Bob Outsider", False)
        assert "not on the rep roster" in first.refusal
    assert step_records(sopflow_up, run.id).get("rep_qualification") is None  # the step is not done
    description = httpx.get(  # what the UI's resume form shows for the second ask
        f"{sopflow_up.api_url}/flow_runs/{second['run_id']}/input/suspended-rep-qualification-ask-1-description",
        timeout=10).json()
    assert "Previous answer not accepted: 'Bob Outsider' is not on the rep roster" in description

    answer(sopflow_up, lead["id"], "rep_qualification", "Alex Kim", "--reject", ask=1)
    assert finished(sopflow_up, lead["id"]).outcome == "rejected at rep_qualification"


def test_resume_form_shows_the_leads_context(sopflow_up):
    lead = add_lead(sopflow_up, name="Ada Byron", company="Analytical Engines", title="Head of Sales")
    row = wait_for(lambda: waiting_ask(sopflow_up, lead["id"], "rep_qualification"), "the rep's ask")
    description = httpx.get(
        f"{sopflow_up.api_url}/flow_runs/{row['run_id']}/input/suspended-rep-qualification-ask-0-description",
        timeout=10).json()
    for expected in ("Ada Byron", "Analytical Engines", "Head of Sales", "| Senior title | +30 |",
                     "Needs assessment done", "**Due by:**", "Alex Kim, Priya Shah"):
        assert expected in description
    assert row["due_by"] and row["url"] == f"{sopflow_up.ui_url}/runs/flow-run/{row['run_id']}"
    answer(sopflow_up, lead["id"], "rep_qualification", "Alex Kim", "--reject")
    finished(sopflow_up, lead["id"])


def test_resumed_run_does_not_repeat_side_effects(sopflow_up):
    lead = add_lead(sopflow_up)
    answer(sopflow_up, lead["id"], "manager_check", "Maria Lopez")
    run = finished(sopflow_up, lead["id"], "email-then-approval")

    with sopflow_up.store() as session:
        emails = session.scalars(select(OutboxEmail).where(OutboxEmail.sop_run_id == run.id)).all()
        assert [e.step_id for e in emails] == ["welcome_email"]
    assert list(step_records(sopflow_up, run.id)) == ["score_lead", "welcome_email", "manager_check", "mark_working"]
    # The run really was re-executed from the top after the resume: the email task ran twice.
    task_runs = httpx.post(f"{sopflow_up.api_url}/task_runs/filter", timeout=10, json={
        "flow_runs": {"id": {"any_": [run.flow_run_id]}}, "sort": "EXPECTED_START_TIME_ASC", "limit": 200}).json()
    assert sum(1 for t in task_runs if t["name"].startswith("welcome_email")) >= 2
