"""A run's history as Prefect shows it: the state texts, the step tasks' end states and the summary table's rows
(on SQLite and PostgreSQL), with no lead's personal data nor free text in any of them."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

import pytest

from sopflow.leads import LeadIn
from sopflow.loader import load_sop
from sopflow.plan import compile_plan
from sopflow.roster import Answerers
from sopflow.run_summary import ask_row, run_summary, summary_rows, wait_row
from sopflow.settings import PROJECT_ROOT
from sopflow.state_messages import decided, waiting_for, waiting_until, woke
from sopflow.store import runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import Approval, StepRecord, Wait
from tasks.approval import answer, approver_of, ask, form_for
from tasks.records import StepCall
from tasks.score import score
from tasks.update_lead import update_lead
from tests.unit.test_cli import store as sqlite_store  # noqa: F401  (the fixture: an empty SQLite store)

PLAN = compile_plan(load_sop(PROJECT_ROOT / "sop_definitions" / "lead-qualification.yaml"))
TUESDAY = datetime(2026, 11, 24, 14, 0, tzinfo=timezone.utc)
REP = Answerers(("rep",), ("Alex Kim", "Priya Shah"))


@pytest.fixture
def store(sqlite_store, store_url, monkeypatch) -> str:
    """test_cli's store settings, with the store on SQLite and then on PostgreSQL."""
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    return store_url


def test_a_suspended_run_says_what_it_waits_for():
    assert waiting_for(REP, TUESDAY) == "waiting for rep: Alex Kim or Priya Shah, due Tue 24 Nov 14:00 UTC"
    escalated = Answerers(("rep", "manager"), ("Alex Kim", "Maria Lopez"))
    assert waiting_for(escalated, None) == "waiting for rep or manager: Alex Kim or Maria Lopez"
    assert waiting_until(TUESDAY) == "waiting until Tue 24 Nov 14:00 UTC"


def test_an_answer_and_a_wake_say_who_and_when():
    assert decided("approve", "Alex Kim", TUESDAY.replace(minute=2)) == (
        "Approved", "approve by Alex Kim at 2026-11-24 14:02 UTC")
    assert decided("reject", "sopflow", TUESDAY)[0] == "Rejected"
    assert woke(TUESDAY) == "woke at 2026-11-24 14:00 UTC"


def record(step_id: str, kind: str, status: str = "completed", **result) -> StepRecord:
    return StepRecord(step_id=step_id, kind=kind, status=status, result=result, started_at=TUESDAY, ended_at=TUESDAY)


def test_summary_rows_follow_the_plan_and_say_outcomes_in_words():
    order = {"notify": 0, "hook": 1, "enrich": 2, "settle": 3, "approve": 4}
    records = [record("approve", "approval", decision="reject", approver="Maria Lopez", notes="Call me on +44 20 7946"),
               record("enrich", "task", segment="Private Co"), record("settle", "wait"),
               record("hook", "webhook", delivered=False, http_status=410),
               record("notify", "email", outbox_id=7, template="welcome")]
    rows = summary_rows(order, records, {"notify": "sent"}, wait_row(Wait(step_id="later", wake_at=TUESDAY)))
    assert [(r["step"], r["status"], r["who"], r["outcome"]) for r in rows] == [
        ("notify", "completed", "sopflow", "sent"), ("hook", "completed", "sopflow", "not delivered (HTTP 410)"),
        ("enrich", "completed", "sopflow", "done"), ("settle", "completed", "sopflow", "woke"),
        ("approve", "completed", "Maria Lopez", "reject"),
        ("later", "waiting", "sopflow", "until Tue 24 Nov 14:00 UTC")]
    assert rows[0]["when"] == "2026-11-24 14:00 UTC" and "Private" not in str(rows) and "+44" not in str(rows)
    asked = Approval(step_id="approve", ask=0, asked_at=TUESDAY, due_by=None)
    assert ask_row(asked, REP) == {"step": "approve", "status": "waiting", "who": "rep: Alex Kim or Priya Shah",
                                   "when": "2026-11-24 14:00 UTC", "outcome": "no deadline"}


def test_step_tasks_end_skipped_with_the_reason_or_named_by_the_decision(store):
    call = started_run()
    scored = score.fn(call("score_lead"))
    assert (scored.name, scored.message, scored.result()["status"]) == ("Completed", None, "completed")
    skipped = update_lead.fn(call("send_to_nurture"))
    assert (skipped.name, skipped.message) == ("Skipped", "condition not met: lead.score < 50")
    assert skipped.result() == {"status": "skipped", "reason": "condition not met: lead.score < 50"}

    asked = ask(call("rep_qualification"))
    form = form_for(PLAN.steps["rep_qualification"].step).model_validate(
        {"decision": "approve", "approver": "alex kim", "notes": "Budget signed by their CFO"})
    approver = approver_of(call("rep_qualification"), asked["ask_id"], form)
    approved = answer.fn(call("rep_qualification"), asked["ask_id"], form, approver)
    assert approved.name == "Approved" and approved.message.startswith("approve by Alex Kim at ")
    assert approved.result()["approver"] == "Alex Kim"


def test_the_summary_of_a_run_waiting_for_its_manager(store):
    call = started_run()
    score.fn(call("score_lead"))
    update_lead.fn(call("send_to_nurture"))
    asked = ask(call("rep_qualification"))
    assert asked["waiting_for"].startswith("waiting for rep: Alex Kim or Priya Shah, due ")
    form = form_for(PLAN.steps["rep_qualification"].step).model_validate(
        {"decision": "approve", "approver": "Priya Shah", "notes": "Budget signed by their CFO"})
    answer.fn(call("rep_qualification"), asked["ask_id"], form, approver_of(call("rep_qualification"),
                                                                           asked["ask_id"], form))
    assert ask(call("manager_approval"))["waiting_for"].startswith("waiting for manager: Maria Lopez, due ")

    with transaction() as session:
        rows = run_summary(session, PLAN, call("score_lead").run_id)
    assert [(r["step"], r["status"], r["who"]) for r in rows] == [
        ("score_lead", "completed", "sopflow"), ("send_to_nurture", "skipped", "sopflow"),
        ("rep_qualification", "completed", "Priya Shah"), ("manager_approval", "waiting", "manager: Maria Lopez")]
    assert rows[0]["outcome"].startswith("scored 75 (grade B")
    assert rows[1]["outcome"] == "skipped: condition not met: lead.score < 50"
    assert rows[2]["outcome"] == "approve" and rows[3]["outcome"].startswith("due ")
    text = json.dumps(rows)
    assert "@" not in text and "CFO" not in text and "Ada" not in text and "Acme" not in text


def started_run():
    """A started lead-qualification run for a lead who scores 75; a function giving its StepCall per step id."""
    with transaction() as session:
        lead = add_lead(session, LeadIn(email=f"{uuid.uuid4().hex[:8]}@example.com", name="Ada Byron", company="Acme",
                                        title="VP Sales", employees=400, industry="software"))[0]
        run = runs.begin_run(session, PLAN.sop.id, lead.id, str(uuid.uuid4()), PLAN.version, PLAN.content_hash)
    return lambda step_id: StepCall(PLAN, run.id, lead.id, step_id)
