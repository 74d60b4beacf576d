"""From a new lead to a completed run through approval pauses, against a real Prefect server."""

from __future__ import annotations

import html
import re

import httpx
import pytest
from sqlalchemy import func, select

from sopflow.cli.approvals import OFF_ROSTER
from sopflow.store.models import Approval, Lead, OutboxEmail
from tests.support import (add_lead, answer, cli_json, finished, flow_state, form_description, sop_run, step_records,
                           task_runs, wait_for, waiting_ask)

pytestmark = pytest.mark.server


def test_approved_lead_is_qualified_and_followed_up(prefect_db_up):
    lead = add_lead(prefect_db_up)
    answer(prefect_db_up, lead["id"], "rep_qualification", "Priya Shah", "--notes", "Budget set; Q1 rollout")
    answer(prefect_db_up, lead["id"], "manager_approval", "maria lopez")
    run = finished(prefect_db_up, lead["id"])

    assert run.outcome == "completed" and run.sop_version == 2 and len(run.sop_hash) == 64
    assert wait_for(lambda: flow_state(prefect_db_up, run.flow_run_id) == "COMPLETED", "Prefect to show COMPLETED")
    records = step_records(prefect_db_up, run.id)
    assert list(records) == ["score_lead", "send_to_nurture", "rep_qualification", "manager_approval",
                             "follow_up_email", "mark_qualified"]
    assert records["send_to_nurture"].status == "skipped"
    assert records["score_lead"].result["score"] == 90
    assert {b["rule"] for b in records["score_lead"].result["breakdown"]} >= {"Senior title", "Target industry"}
    assert records["manager_approval"].result["approver"] == "Maria Lopez"  # the roster's spelling
    with prefect_db_up.store() as session:
        asks = session.scalars(select(Approval).where(Approval.sop_run_id == run.id).order_by(Approval.id)).all()
        assert [(a.step_id, a.decision, a.approver, a.accepted) for a in asks] == [
            ("rep_qualification", "approve", "Priya Shah", True), ("manager_approval", "approve", "Maria Lopez", True)]
        assert asks[0].notes == "Budget set; Q1 rollout" and asks[0].answered_at > asks[0].asked_at
        assert asks[0].due_by is not None
        emails = session.scalars(select(OutboxEmail).where(OutboxEmail.sop_run_id == run.id)).all()
        assert [(e.step_id, e.subject) for e in emails] == [("follow_up_email", "Next steps for Acme")]
        lead_row = session.get(Lead, lead["id"])
        assert (lead_row.status, lead_row.owner, lead_row.score, lead_row.grade) == ("qualified", "Alex Kim", 90, "A")


def test_rejection_follows_on_reject(prefect_db_up):
    lead = add_lead(prefect_db_up)
    answer(prefect_db_up, lead["id"], "rep_qualification", "Alex Kim", "--reject", "--notes", "No budget until 2028")
    run = finished(prefect_db_up, lead["id"])

    assert run.outcome == "rejected at rep_qualification"
    records = step_records(prefect_db_up, run.id)
    assert list(records) == ["score_lead", "send_to_nurture", "rep_qualification", "disqualify"]
    assert records["rep_qualification"].result["decision"] == "reject"
    with prefect_db_up.store() as session:
        assert session.get(Lead, lead["id"]).status == "disqualified"
        assert session.scalar(select(func.count()).select_from(OutboxEmail).where(OutboxEmail.sop_run_id == run.id)) == 0


def test_low_score_goes_to_nurture_without_asking(prefect_db_up):
    lead = add_lead(prefect_db_up, title="Student", employees="3", industry="retail", source="purchased list")
    run = finished(prefect_db_up, lead["id"])

    assert list(step_records(prefect_db_up, run.id)) == ["score_lead", "send_to_nurture"]
    with prefect_db_up.store() as session:
        assert session.get(Lead, lead["id"]).status == "nurture"
        assert session.scalar(select(func.count()).select_from(Approval).where(Approval.sop_run_id == run.id)) == 0


def test_approver_outside_roster_is_recorded_and_asked_again(prefect_db_up):
    lead = add_lead(prefect_db_up)
    answer(prefect_db_up, lead["id"], "rep_qualification", "Bob Outsider", code=OFF_ROSTER)  # not "approved", exit 3
    second = wait_for(lambda: waiting_ask(prefect_db_up, lead["id"], "rep_qualification", ask=1), "a second ask")

    run = sop_run(prefect_db_up, lead["id"])
    with prefect_db_up.store() as session:
        first = session.scalar(select(Approval).where(Approval.sop_run_id == run.id, Approval.ask == 0))
        assert (first.approver, first.accepted) == ("Bob Outsider", False)
        assert "not on the rep roster" in first.refusal
    assert step_records(prefect_db_up, run.id).get("rep_qualification") is None  # the step is not done
    description = form_description(prefect_db_up, second["run_id"], "rep-qualification-ask-1")
    assert "Previous answer not accepted: 'Bob Outsider' is not on the rep roster" in description

    answer(prefect_db_up, lead["id"], "rep_qualification", "Alex Kim", "--reject", ask=1)
    assert finished(prefect_db_up, lead["id"]).outcome == "rejected at rep_qualification"
    # the refused answer added no task run: the step's one task run is the accepted answer
    shown = task_runs(prefect_db_up, run.flow_run_id, ended=4)
    assert [t["name"] for t in shown] == ["score_lead", "send_to_nurture", "rep_qualification", "disqualify"]
    assert shown[2]["state"]["name"] == "Rejected" and shown[2]["state"]["message"].startswith("reject by Alex Kim at ")


def test_resume_form_shows_the_leads_context(prefect_db_up):
    lead = add_lead(prefect_db_up, name="Ada Byron", company="Analytical Engines", title="Head of Sales")
    waiting = wait_for(lambda: waiting_ask(prefect_db_up, lead["id"], "rep_qualification"), "the rep's ask")
    row = next(r for r in cli_json(prefect_db_up.env, "approvals") if r["run_id"] == waiting["run_id"])
    assert (row["sop"], row["step"], row["lead_id"], row["ask"]) == ("lead-qualification", "rep_qualification", lead["id"], 0)
    description = form_description(prefect_db_up, row["run_id"], "rep-qualification-ask-0")
    for expected in ("Ada Byron", "Analytical Engines", "Head of Sales", "| Senior title | +30 |",
                     "Needs assessment done", "**Due by:**", "Alex Kim, Priya Shah"):
        assert expected in description
    assert row["due_by"] and row["waiting_since"] and row["url"] == f"{prefect_db_up.ui_url}/runs/flow-run/{row['run_id']}"
    answer(prefect_db_up, lead["id"], "rep_qualification", "Alex Kim", "--reject")
    finished(prefect_db_up, lead["id"])


def test_resumed_run_does_not_repeat_side_effects(prefect_db_up):
    lead = add_lead(prefect_db_up)
    answer(prefect_db_up, lead["id"], "manager_check", "Maria Lopez")
    run = finished(prefect_db_up, lead["id"], "email-then-approval")

    with prefect_db_up.store() as session:
        emails = session.scalars(select(OutboxEmail).where(OutboxEmail.sop_run_id == run.id)).all()
        assert [e.step_id for e in emails] == ["welcome_email"]
    assert list(step_records(prefect_db_up, run.id)) == ["welcome_email", "manager_check", "mark_working"]
    # The run was suspended, then re-executed from the top when resumed; the settled email step came back from
    # the store without a task run of its own, so each step shows once.
    with prefect_db_up.api() as api:
        states = [s["name"] for s in api.get("/flow_run_states/", params={"flow_run_id": run.flow_run_id}).json()]
    assert "Suspended" in states and states.count("Running") >= 2
    assert [t["name"] for t in task_runs(prefect_db_up, run.flow_run_id, ended=3)] == [
        "welcome_email", "manager_check", "mark_working"]


def delivered_to(mailbox, address: str) -> list:
    return [m for m in mailbox.messages if m["To"] == address]


def test_the_follow_up_email_arrives_once_with_an_unsubscribe_line(prefect_db_up, mailbox):
    lead = add_lead(prefect_db_up, name="Kim Park", company="Parkside")
    answer(prefect_db_up, lead["id"], "manager_check", "Maria Lopez")  # email-then-approval: email before the pause
    finished(prefect_db_up, lead["id"], "email-then-approval")
    with prefect_db_up.store() as session:
        address = session.get(Lead, lead["id"]).email
        row = session.scalar(select(OutboxEmail).where(OutboxEmail.lead_id == lead["id"]))
        assert (row.status, row.attempts) == ("sent", 1)
    messages = wait_for(lambda: delivered_to(mailbox, address), "the email to reach the SMTP server")
    assert len(messages) == 1
    message = messages[0]
    assert message["Subject"] == "Next steps for Parkside"
    assert message["List-Unsubscribe"].startswith("<http") and "unsubscribe?lead=" in message["List-Unsubscribe"]
    text = message.get_body(("plain",)).get_content()
    assert "Hi Kim," in text and "Unsubscribe: http" in text


def test_a_do_not_contact_lead_is_never_emailed(prefect_db_up, mailbox):
    lead = add_lead(prefect_db_up, do_not_contact=True)
    answer(prefect_db_up, lead["id"], "manager_check", "Maria Lopez")
    run = finished(prefect_db_up, lead["id"], "email-then-approval")
    record = step_records(prefect_db_up, run.id)["welcome_email"]
    assert (record.status, record.result["reason"]) == ("skipped", "not emailed: the lead is marked do-not-contact")
    with prefect_db_up.store() as session:
        address = session.get(Lead, lead["id"]).email
        assert session.scalar(select(func.count()).select_from(OutboxEmail).where(OutboxEmail.lead_id == lead["id"])) == 0
    assert delivered_to(mailbox, address) == []


def test_the_unsubscribe_link_stops_further_email(prefect_db_up, mailbox):
    lead = add_lead(prefect_db_up)
    answer(prefect_db_up, lead["id"], "manager_check", "Maria Lopez")
    finished(prefect_db_up, lead["id"], "email-then-approval")
    with prefect_db_up.store() as session:
        address = session.get(Lead, lead["id"]).email
    message = wait_for(lambda: delivered_to(mailbox, address), "the email")[0]
    link = message["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{prefect_db_up.intake_url}/unsubscribe?")  # the intake's own port, nothing configured
    assert httpx.get(link.replace("token=", "token=forged"), timeout=10).status_code == 400
    for _ in range(2):  # a mail scanner opening the link unsubscribes nobody
        page = httpx.get(link, timeout=10)
        assert page.status_code == 200 and "Press the button" in page.text
    with prefect_db_up.store() as session:
        assert session.get(Lead, lead["id"]).unsubscribed_at is None
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1)
    pressed = httpx.post(f"{prefect_db_up.intake_url}{html.unescape(action)}", timeout=10)
    assert pressed.status_code == 200 and "You are unsubscribed" in pressed.text
    with prefect_db_up.store() as session:
        assert session.get(Lead, lead["id"]).unsubscribed_at is not None
    assert "already unsubscribed" in httpx.get(link, timeout=10).text
    # the lead goes on to qualification's follow-up email, which must now be skipped
    answer(prefect_db_up, lead["id"], "rep_qualification", "Alex Kim")
    answer(prefect_db_up, lead["id"], "manager_approval", "Maria Lopez")
    run = finished(prefect_db_up, lead["id"])
    record = step_records(prefect_db_up, run.id)["follow_up_email"]
    assert (record.status, record.result["reason"]) == ("skipped", "not emailed: the lead unsubscribed")
    assert len(delivered_to(mailbox, address)) == 1


def test_a_registered_team_function_runs_as_a_task_step(prefect_db_up):
    lead = add_lead(prefect_db_up, employees="450")
    run = finished(prefect_db_up, lead["id"], "custom-task")
    records = step_records(prefect_db_up, run.id)
    assert records["enrich"].result == {"segment": "mid-market", "region": "emea", "key": f"sopflow-{run.id}-enrich"}
    assert records["tag_segment"].status == "completed"
    with prefect_db_up.store() as session:
        assert session.get(Lead, lead["id"]).fields["segment"] == "mid-market"
