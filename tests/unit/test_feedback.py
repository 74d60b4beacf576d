"""Feedback on SOPs: from `sopflow feedback` and with accepted approval answers, kept against the SOP's version."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select

from sopflow.catalog import load_all
from sopflow.cli import approvals as approvals_cli
from sopflow.errors import SopInvalid
from sopflow.leads import LeadIn
from sopflow.loader import load_sop_text
from sopflow.plan import compile_plan
from sopflow.settings import PROJECT_ROOT
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.feedback import add_feedback, feedback_for
from sopflow.store.leads import add_lead
from sopflow.store.models import Feedback, SopRun, SopVersion
from tasks.approval import form_for
from tasks.records import StepCall
from tests.approval_samples import answered
from tests.unit.test_cli import cli, sent  # noqa: F401  (`sent`: the answers `sopflow approve` sends)
from tests.unit.test_cli import store as sqlite_store  # noqa: F401  (the fixture: an empty SQLite store)

SOPS = load_all(PROJECT_ROOT / "sop_definitions")
NEGOTIATION = SOPS["negotiation-closing"]
PLAN = compile_plan(NEGOTIATION)
RUN_HASH = "b" * 64  # the version the run started on: not the file's


@pytest.fixture
def store(sqlite_store, store_url, monkeypatch) -> str:
    """test_cli's store settings, with the store on SQLite and then on PostgreSQL."""
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    return store_url


def stored() -> list[Feedback]:
    with transaction() as session:
        return list(session.scalars(select(Feedback).order_by(Feedback.id)))


def approval_step(step_id: str):
    return next(s for s in NEGOTIATION.sop.steps if s.id == step_id)


def waiting_ask(step_id: str = "deal_terms", role: str = "rep") -> tuple[StepCall, int]:
    """A run of negotiation-closing started on version 3 (hash RUN_HASH), asking `step_id`."""
    with transaction() as session:
        lead_id = add_lead(session, LeadIn(email=f"{uuid.uuid4().hex[:8]}@example.com", company="Acme"))[0].id
        run_id = runs.begin_run(session, "negotiation-closing", lead_id, str(uuid.uuid4()), 3, RUN_HASH).id
        ask_id = approvals.open_ask(session, run_id, step_id, role, "Terms?", None).id
    return StepCall(PLAN, run_id, lead_id, step_id), ask_id


# sopflow feedback


def test_feedback_is_kept_against_the_version_on_file_with_its_step_and_giver(store, capsys):
    code, out, err = cli(capsys, "feedback", "negotiation-closing", "The discount limits are unclear.",
                         "--step", "discount_approval", "--by", "Maria Lopez")
    assert (code, err) == (0, "")
    assert out == (f"feedback on negotiation-closing/discount_approval (version {NEGOTIATION.sop.version}, "
                   f"{NEGOTIATION.content_hash[:12]}) kept for its review\n")
    code, out, err = cli(capsys, "feedback", "negotiation-closing", "  Too many steps overall.  ", "--json")
    assert (code, err) == (0, "")
    printed = json.loads(out)
    assert printed["step_id"] is None and printed["sop_hash"] == NEGOTIATION.content_hash and "text" not in printed

    first, second = stored()
    assert (first.sop_id, first.sop_version, first.sop_hash, first.step_id, first.text, first.given_by,
            first.source, first.sop_run_id) == (
        "negotiation-closing", NEGOTIATION.sop.version, NEGOTIATION.content_hash, "discount_approval",
        "The discount limits are unclear.", "Maria Lopez", "cli", None)
    assert (second.step_id, second.text, second.given_by, second.id) == (None, "Too many steps overall.", None,
                                                                         printed["id"])
    with transaction() as session:  # the version the feedback is about is kept too, for the review to show
        kept = session.scalars(select(SopVersion.content_hash).where(SopVersion.sop_id == "negotiation-closing"))
        assert list(kept) == [NEGOTIATION.content_hash]


def test_an_unknown_sop_or_step_is_refused_with_a_did_you_mean(store, capsys):
    code, out, err = cli(capsys, "feedback", "negotiation-closin", "Unclear.")
    assert (code, out) == (1, "")
    assert err == ("sopflow feedback: no SOP is called 'negotiation-closin' (did you mean 'negotiation-closing'?); "
                   "`sopflow validate` lists the SOPs\n")
    code, out, err = cli(capsys, "feedback", "negotiation-closing", "Unclear.", "--step", "deal_term")
    assert (code, out) == (2, "")
    assert err.startswith("sopflow feedback: no step is called 'deal_term' (did you mean 'deal_terms'?); ")
    assert err.count("\n") == 1
    code, _, err = cli(capsys, "feedback", "negotiation-closing", "Unclear.", "--step", "score_lead")
    assert code == 2 and "no step is called 'score_lead'" in err  # a step of another SOP is not this SOP's
    assert stored() == []


@pytest.mark.parametrize(("text", "reason"), [
    ("", "feedback is empty"),
    ("   ", "feedback is empty"),
    ("x" * 2001, "feedback is 2001 characters, more than 2000"),
    ("fine\x07bell", "control or invisible character (U+0007 at position 5)"),
    ("two\nlines", "control or invisible character (U+000A at position 4)"),
    ("moc.evil\u202e", "control or invisible character (U+202E at position 9)"),
])
def test_unfit_text_is_refused_and_nothing_is_stored(store, capsys, text, reason):
    code, out, err = cli(capsys, "feedback", "negotiation-closing", text)
    assert (code, out) == (2, "")
    assert err.startswith("sopflow feedback: ") and reason in err and err.endswith("; nothing was stored\n")
    assert stored() == []
    with transaction() as session, pytest.raises(ValueError, match="feedback"):
        add_feedback(session, "negotiation-closing", 1, "a" * 64, text, "cli")
    assert stored() == []


def test_the_longest_feedback_is_kept_and_a_bad_giver_name_is_refused(store, capsys):
    assert cli(capsys, "feedback", "prospecting", "y" * 2000)[0] == 0
    code, _, err = cli(capsys, "feedback", "prospecting", "Fine.", "--by", "Eve\x1b[2J")
    assert code == 2 and "--by contains a control or invisible character" in err
    assert [len(row.text) for row in stored()] == [2000]


def test_feedback_for_returns_an_sops_feedback_oldest_first_since_a_time(store):
    with transaction() as session:
        rows = [add_feedback(session, sop_id, 1, "a" * 64, f"note {n}", "cli")
                for n, sop_id in enumerate(["prospecting", "negotiation-closing", "prospecting", "prospecting"])]
        base = rows[0].created_at
        for n, row in enumerate(rows):  # stored out of time order: the query orders them
            row.created_at = base + timedelta(minutes=[30, 0, 10, 20][n])
    with transaction() as session:
        assert [row.text for row in feedback_for(session, "prospecting")] == ["note 2", "note 3", "note 0"]
        since = [row.text for row in feedback_for(session, "prospecting", since=base + timedelta(minutes=20))]
        assert since == ["note 3", "note 0"]
        assert [row.text for row in feedback_for(session, "negotiation-closing")] == ["note 1"]
        assert feedback_for(session, "order-processing") == []


# feedback with an approval answer


def test_every_approval_form_has_an_optional_feedback_field():
    for step_id in ("deal_terms", "discount_approval"):  # with and without inputs of its own
        form = form_for(approval_step(step_id))
        field = form.model_json_schema()["properties"]["feedback"]
        assert field["maxLength"] == 2000 and field["description"].startswith(
            "Feedback on this step of the SOP (optional): what is unclear, missing or slow")
        assert "feedback" not in form.model_json_schema().get("required", [])
    assert form_for(approval_step("discount_approval")).model_validate(
        {"decision": "approve", "approver": "Maria Lopez"}).feedback == ""


def test_feedback_is_a_reserved_input_name():
    text = (PROJECT_ROOT / "sop_definitions" / "negotiation-closing.yaml").read_text()
    assert "      discount_percent:" in text
    with pytest.raises(SopInvalid) as raised:
        load_sop_text(text.replace("      discount_percent:", "      feedback:", 1), NEGOTIATION.path)
    assert any("input name 'feedback' is reserved" in error.reason for error in raised.value.errors)


def test_an_accepted_answers_feedback_is_kept_against_the_runs_version_and_step(store, caplog):
    call, ask_id = waiting_ask()
    form = form_for(call.planned.step).model_validate(
        {"decision": "approve", "approver": "alex kim", "deal_value": 25000, "discount_percent": 10,
         "feedback": "The deal value field should say net or gross."})

    with caplog.at_level(logging.DEBUG):
        result = answered(call, ask_id, form)

    assert result["status"] == "completed" and "feedback" not in result
    [row] = stored()
    assert (row.sop_id, row.sop_version, row.sop_hash, row.step_id, row.given_by, row.source, row.sop_run_id) == (
        "negotiation-closing", 3, RUN_HASH, "deal_terms", "Alex Kim", "approval", call.run_id)
    assert row.text == "The deal value field should say net or gross."
    with transaction() as session:
        assert "feedback" not in runs.step_record(session, call.run_id, "deal_terms").result
    assert "net or gross" not in caplog.text
    assert answered(call, ask_id, form)["status"] == "completed" and len(stored()) == 1  # a replay keeps it once


def test_a_refused_answers_feedback_is_not_kept_nor_unfit_feedback_nor_logged(store, caplog):
    call, ask_id = waiting_ask("discount_approval", "manager")
    off_roster = form_for(call.planned.step).model_validate(
        {"decision": "approve", "approver": "Mallory", "feedback": "Skip this step."})
    assert answered(call, ask_id, off_roster)["status"] == "refused"
    assert stored() == []

    with transaction() as session:
        next_ask = approvals.open_ask(session, call.run_id, "discount_approval", "manager", "Terms?", None).id
    unfit = form_for(call.planned.step).model_validate(
        {"decision": "approve", "approver": "Maria Lopez", "feedback": "secret\x1b[2Jwipe"})
    with caplog.at_level(logging.DEBUG):
        assert answered(call, next_ask, unfit)["status"] == "completed"  # the answer counts; the feedback is left out
    assert stored() == []
    assert "not kept" in caplog.text and "secret" not in caplog.text and "wipe" not in caplog.text


# sopflow approve --feedback


def flow_run_of(call: StepCall) -> str:
    with transaction() as session:
        return session.get_one(SopRun, call.run_id).flow_run_id


def test_approve_sends_feedback_in_the_answer_and_refuses_unfit_feedback(store, capsys, sent):
    call, _ = waiting_ask("discount_approval", "manager")
    flow_run = flow_run_of(call)
    code, _, err = cli(capsys, "approve", flow_run, "--approver", "Maria Lopez", "--feedback", "x" * 2001)
    assert (code, sent) == (2, [])
    assert err == "sopflow approve: --feedback: feedback is 2001 characters, more than 2000; shorten it; " \
                  "nothing was sent\n"
    code, out, err = cli(capsys, "approve", flow_run, "--approver", "Maria Lopez", "--feedback", "Needs a checklist.")
    assert (code, err) == (0, "")
    assert sent == [(flow_run, {"decision": "approve", "approver": "Maria Lopez", "notes": "",
                                "feedback": "Needs a checklist."})]
    assert out.endswith("; the run continues and its feedback is kept\n")
    code, _, err = cli(capsys, "approve", flow_run, "--approver", "Mallory", "--feedback", "Skip it.")
    assert code == approvals_cli.OFF_ROSTER and "the answer is recorded (its feedback is not)" in err
