"""The `sopflow` CLI against a real SQLite store, seeded the way the interpreter and the step tasks write it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from sopflow.catalog import load_all
from sopflow.cli import approvals as approvals_cli
from sopflow.cli import main
from sopflow.leads import LeadIn, lead_context
from sopflow.scoring import score_for_step
from sopflow.settings import PROJECT_ROOT
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import Lead, OutboxEmail, SopRun, utcnow
from sopflow.store.outbox import queue_email

SOPS = load_all(PROJECT_ROOT / "sop_definitions")
NOW = utcnow()


@pytest.fixture
def store(tmp_path, monkeypatch) -> str:
    """An empty SQLite store, and no Prefect server known to sopflow."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(PROJECT_ROOT / "sop_definitions"))
    for name in ("PREFECT_API_URL", "PREFECT_UI_URL"):
        monkeypatch.delenv(name, raising=False)
    return url


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def cli_json(capsys, *args: str):
    code, out, err = cli(capsys, *args, "--json")
    assert code == 0, err
    return json.loads(out)


# Seeding: what the interpreter, the step tasks and delivery write, step by step.

def new_lead(**fields) -> str:
    values = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "name": "Jane Doe", "company": "Acme",
              "title": "VP Sales", "employees": 500, "industry": "software", "source": "website", **fields}
    with transaction() as session:
        return add_lead(session, LeadIn(**values))[0].id


def start(sop_id: str, lead_id: str, minutes_ago: int = 60) -> str:
    with transaction() as session:
        run = runs.begin_run(session, sop_id, lead_id, str(uuid.uuid4()), 1, "hash")
        run.started_at = NOW - timedelta(minutes=minutes_ago)
        return run.id


def step(run_id: str, step_id: str, kind: str, result: dict, status: str = "completed") -> None:
    with transaction() as session:
        runs.record_step(session, run_id, step_id, kind, status, result, NOW - timedelta(minutes=30))


def score(run_id: str, lead_id: str, sop_id: str = "lead-qualification") -> dict:
    rule_step = next(s for s in SOPS[sop_id].sop.steps if s.kind == "score")
    with transaction() as session:
        lead = session.get_one(Lead, lead_id)
        result = score_for_step(rule_step, lead_context(lead))
        lead.score, lead.grade = result["score"], result["grade"]
        lead.fields = {"stage": result["stage"]}
    step(run_id, rule_step.id, "score", result)
    return result


def ask(run_id: str, step_id: str, role: str, waited: timedelta = timedelta(hours=1)) -> int:
    with transaction() as session:
        now = utcnow()  # not NOW: the CLI measures the wait against the clock when it runs
        asked = approvals.open_ask(session, run_id, step_id, role, "Decide?", now + timedelta(days=1))
        asked.asked_at = now - waited
        return asked.id


def decide(run_id: str, step_id: str, role: str, approver: str, decision: str = "approve", notes: str = "",
           refusal: str | None = None, **inputs) -> None:
    ask_id = ask(run_id, step_id, role)
    with transaction() as session:
        answered = approvals.record_answer(session, ask_id, decision, approver, notes, refusal)
        asks = answered.ask + 1
    if refusal is None:
        step(run_id, step_id, "approval",
             {"decision": decision, "approver": approver, "notes": notes, "asks": asks, **inputs})


def email(run_id: str, lead_id: str, step_id: str, subject: str, status: str = "sent", error: str | None = None):
    with transaction() as session:
        to = session.get_one(Lead, lead_id).email
        queued = queue_email(session, OutboxEmail(
            sop_run_id=run_id, step_id=step_id, lead_id=lead_id, to_address=to, subject=subject,
            body_text="Hello", status=status, attempts=1, last_error=error,
            sent_at=NOW if status == "sent" else None))
        outbox_id = queued.id
    step(run_id, step_id, "email", {"outbox_id": outbox_id, "template": step_id})


def finish(run_id: str, outcome: str = "completed", state: str = "completed") -> None:
    with transaction() as session:
        runs.set_state(session, run_id, state, outcome)


def qualified_and_demoed() -> tuple[str, str, str]:
    """A lead taken through qualification (refused once, then approved), a sent email, and a demo."""
    lead_id = new_lead(name="Ada Byron", company="Analytical Engines", title="Head of Sales")
    qual = start("lead-qualification", lead_id, minutes_ago=90)
    score(qual, lead_id)
    decide(qual, "rep_qualification", "rep", "Bob Outsider",
           refusal="'Bob Outsider' is not on the rep roster (Alex Kim, Priya Shah); ask one of them to answer")
    decide(qual, "rep_qualification", "rep", "Alex Kim", notes="Budget approved for Q1")
    decide(qual, "manager_approval", "manager", "Maria Lopez", notes="Good fit")
    email(qual, lead_id, "follow_up_email", "Next steps with Acme")
    step(qual, "mark_qualified", "update_lead",
         {"status": "qualified", "starts": ["presentation-demo"], "owner": "Alex Kim"})
    finish(qual)
    demo = start("presentation-demo", lead_id, minutes_ago=20)
    email(demo, lead_id, "demo_invitation", "Your demo", status="failed", error="550 mailbox unavailable")
    decide(demo, "demo_outcome", "rep", "Priya Shah", outcome="interested", attendees=3)
    step(demo, "to_negotiation", "update_lead", {"status": "opportunity", "starts": []})
    step(demo, "closed_lost", "update_lead", {"reason": 'condition not met: steps.demo_outcome.outcome == '
                                                        '"not_interested"'}, status="skipped")
    finish(demo)
    return lead_id, qual, demo


def test_lead_show_tells_every_step_decision_and_email(store, capsys):
    lead_id, qual, demo = qualified_and_demoed()

    shown = cli_json(capsys, "lead", "show", lead_id)
    assert shown["lead"]["name"] == "Ada Byron" and shown["lead"]["status"] == "new"
    assert shown["score"]["score"] == 90 and {b["rule"] for b in shown["score"]["breakdown"]} >= {"Senior title"}
    assert shown["score"]["scored_by"]["step"] == "score_lead"
    assert [(r["sop"], r["outcome_text"]) for r in shown["runs"]] == [
        ("lead-qualification", "qualified"), ("presentation-demo", "became an opportunity")]
    assert [s["step"] for s in shown["runs"][0]["steps"]] == [
        "score_lead", "rep_qualification", "manager_approval", "follow_up_email", "mark_qualified"]
    assert [(s["step"], s["status"]) for s in shown["runs"][1]["steps"]][-1] == ("closed_lost", "skipped")
    assert [(d["step"], d["ask"], d["approver"], d["accepted"]) for d in shown["decisions"]] == [
        ("rep_qualification", 0, "Bob Outsider", False), ("rep_qualification", 1, "Alex Kim", True),
        ("manager_approval", 0, "Maria Lopez", True), ("demo_outcome", 0, "Priya Shah", True)]
    assert all(d["asked_at"] and d["answered_at"] for d in shown["decisions"])
    datetime.fromisoformat(shown["decisions"][0]["answered_at"])  # ISO timestamps
    assert [(e["step"], e["status"], e["reason"]) for e in shown["emails"]] == [
        ("follow_up_email", "sent", None), ("demo_invitation", "failed", "550 mailbox unavailable")]

    code, out, err = cli(capsys, "lead", "show", lead_id)
    assert code == 0 and err == ""
    for expected in ("Ada Byron, Head of Sales at Analytical Engines", "Score 90 (grade A", "Senior title", "+30",
                     "lead-qualification v1: qualified", "presentation-demo v1: became an opportunity",
                     "scored 90", "approved by Alex Kim after 2 asks", "approved by Priya Shah (outcome: interested, "
                     "attendees: 3)", "status → qualified; owner Alex Kim; started presentation-demo",
                     "email sent: 'Next steps with Acme'", "'Bob Outsider' is not on the rep roster",
                     "Budget approved for Q1", "Maria Lopez", "550 mailbox unavailable",
                     "condition not met: steps.demo_outcome.outcome"):
        assert expected in out, expected


def test_lead_show_says_why_an_email_was_skipped(store, capsys):
    lead_id = new_lead(do_not_contact=True)
    run = start("lead-qualification", lead_id)
    step(run, "follow_up_email", "email", {"reason": "not emailed: the lead is marked do-not-contact"}, "skipped")
    emails = cli_json(capsys, "lead", "show", lead_id)["emails"]
    assert [(e["step"], e["status"], e["reason"]) for e in emails] == [
        ("follow_up_email", "skipped", "not emailed: the lead is marked do-not-contact")]
    code, out, _ = cli(capsys, "lead", "show", lead_id)
    assert "do not contact" in out and "not emailed: the lead is marked do-not-contact" in out


def test_lead_show_of_an_unknown_lead_is_one_sentence(store, capsys):
    code, out, err = cli(capsys, "lead", "show", "no-such-lead")
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "no lead has id 'no-such-lead'" in err and "sopflow leads" in err


def test_leads_lists_and_filters(store, capsys):
    lead_id, *_ = qualified_and_demoed()
    other = new_lead(name="Bo Chen", company="Bolt")
    with transaction() as session:
        session.get_one(Lead, other).status = "nurture"
    rows = cli_json(capsys, "leads")
    assert {r["id"] for r in rows} == {lead_id, other}
    assert set(rows[0]) >= {"id", "name", "company", "status", "score", "grade", "created_at"}
    assert [r["name"] for r in cli_json(capsys, "leads", "--status", "nurture")] == ["Bo Chen"]
    code, out, _ = cli(capsys, "leads")
    assert out.splitlines()[0].split() == ["Lead", "Name", "Company", "Status", "Score", "Grade", "Created", "(UTC)"]
    assert "Analytical Engines" in out and "90" in out
    with pytest.raises(SystemExit) as refused:
        main(["leads", "--status", "hot"])
    assert refused.value.code == 2


def test_outbox_lists_emails_with_their_delivery(store, capsys):
    qualified_and_demoed()
    rows = cli_json(capsys, "outbox")
    assert {(r["subject"], r["status"], r["attempts"]) for r in rows} == {
        ("Next steps with Acme", "sent", 1), ("Your demo", "failed", 1)}
    assert set(rows[0]) >= {"lead_id", "lead_name", "to", "subject", "status", "attempts", "sent_at", "last_error"}
    assert [r["last_error"] for r in cli_json(capsys, "outbox", "--status", "failed")] == ["550 mailbox unavailable"]
    code, out, _ = cli(capsys, "outbox")
    assert out.splitlines()[0].split()[:3] == ["Lead", "Company", "To"] and "Ada Byron" in out


def test_runs_say_the_outcome_in_words_with_the_company(store, capsys):
    qualified_and_demoed()
    rejected = start("lead-qualification", new_lead(company="Nope Inc"))
    decide(rejected, "rep_qualification", "rep", "Alex Kim")
    decide(rejected, "manager_approval", "manager", "Maria Lopez", decision="reject")
    step(rejected, "disqualify", "update_lead", {"status": "disqualified", "starts": []})
    finish(rejected, "rejected at manager_approval")
    waiting = start("lead-qualification", new_lead(company="Waiting Co"))
    ask(waiting, "rep_qualification", "rep")
    with transaction() as session:
        runs.set_state(session, waiting, "waiting")
    nurtured = start("lead-qualification", new_lead(company="Small Shop"))
    step(nurtured, "send_to_nurture", "update_lead", {"status": "nurture", "starts": []})
    finish(nurtured)

    rows = {r["company"] + " " + r["sop"]: r for r in cli_json(capsys, "runs")}
    assert {k: r["outcome_text"] for k, r in rows.items()} == {
        "Analytical Engines lead-qualification": "qualified",
        "Analytical Engines presentation-demo": "became an opportunity",
        "Nope Inc lead-qualification": "rejected at manager_approval, disqualified",
        "Waiting Co lead-qualification": "waiting for the rep at rep_qualification",
        "Small Shop lead-qualification": "nurtured",
    }
    assert rows["Small Shop lead-qualification"]["outcome"] == "completed"  # the stored value, unchanged
    assert [r["company"] for r in cli_json(capsys, "runs", "--state", "waiting")] == ["Waiting Co"]
    assert {r["sop"] for r in cli_json(capsys, "runs", "--sop", "presentation-demo")} == {"presentation-demo"}
    code, out, _ = cli(capsys, "runs")
    assert out.splitlines()[0].split()[:5] == ["Flow", "run", "SOP", "Company", "State"]
    assert "rejected at manager_approval, disqualified" in out and "Small Shop" in out


@pytest.mark.parametrize("args, hint", [
    (["runs", "--sop", "lead-qualifcation"],
     "no SOP is called 'lead-qualifcation' (did you mean 'lead-qualification'?)"),
    (["approvals", "--sop", "negotiaton-closing"], "(did you mean 'negotiation-closing'?)"),
    (["approvals", "--sop", "lead-qualification", "--step", "manager_aproval"],
     "no approval step is called 'manager_aproval' (did you mean 'manager_approval'?)"),
])
def test_filters_naming_an_unknown_sop_or_step_suggest_the_closest(store, capsys, args, hint):
    code, out, err = cli(capsys, *args)
    assert (code, out) == (2, "")
    assert hint in err and err.count("\n") == 1


def test_approvals_show_the_lead_and_how_long_it_waited(store, capsys, monkeypatch):
    monkeypatch.setenv("PREFECT_UI_URL", "http://ui.example")
    lead_id = new_lead(name="Ada Byron", company="Analytical Engines")
    run_id = start("lead-qualification", lead_id)
    ask(run_id, "rep_qualification", "rep", waited=timedelta(hours=3, minutes=12, seconds=20))
    rows = cli_json(capsys, "approvals")
    assert len(rows) == 1
    row = rows[0]
    for key in ("run_id", "sop", "step", "lead_id", "role", "prompt", "ask", "waiting_since", "due_by", "url"):
        assert key in row, key  # the keys the integration and browser tests read
    assert (row["lead_name"], row["company"], row["waited"], row["ask"]) == (
        "Ada Byron", "Analytical Engines", "3h 12m", 0)
    assert row["url"] == f"http://ui.example/runs/flow-run/{row['run_id']}"
    assert cli_json(capsys, "approvals", "--step", "manager_approval") == []
    code, out, _ = cli(capsys, "approvals")
    assert out.splitlines()[0].split()[:4] == ["Flow", "run", "SOP", "/"]
    assert "Ada Byron" in out and "Analytical Engines" in out and "3h 12m" in out


# approve: inputs checked before sending; the roster rule; typed values sent as typed.

@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict]]:
    """Answers `sopflow approve` sends (in place of resuming the flow run on a Prefect server)."""
    answers: list[tuple[str, dict]] = []
    monkeypatch.setattr(approvals_cli, "send_answer", lambda run_id, answer: answers.append((run_id, answer)))
    return answers


def waiting_run(sop_id: str, step_id: str, role: str) -> str:
    run_id = start(sop_id, new_lead())
    ask(run_id, step_id, role)
    with transaction() as session:
        return session.get_one(SopRun, run_id).flow_run_id


def test_approve_lists_every_bad_input_and_sends_nothing(store, capsys, sent):
    flow_run = waiting_run("negotiation-closing", "deal_terms", "rep")
    code, out, err = cli(capsys, "approve", flow_run, "--approver", "Alex Kim",
                         "--input", "deal_value=abc", "--input", "discont_percent=5", "--input", "oops")
    assert (code, out, sent) == (2, "", [])
    lines = err.splitlines()
    assert lines == [
        "sopflow approve: --input 'oops' must look like NAME=VALUE",
        "sopflow approve: --input discont_percent: is not an input of this step (did you mean 'discount_percent'?)",
        "sopflow approve: --input deal_value (Deal value (EUR per year), a number): 'abc' is not a number",
        "sopflow approve: --input discount_percent (Discount (%), a number): missing; it is required",
        "sopflow approve: nothing was sent; fix the inputs above and answer again",
    ]
    code, _, err = cli(capsys, "approve", flow_run, "--approver", "Alex Kim",
                       "--input", "deal_value=-1", "--input", "discount_percent=120")
    assert code == 2 and sent == []
    assert "deal_value (Deal value (EUR per year), a number): -1 is below the minimum, 0" in err
    assert "discount_percent (Discount (%), a number): 120 is above the maximum, 100" in err


def test_approve_sends_numbers_as_typed(store, capsys, sent):
    flow_run = waiting_run("negotiation-closing", "deal_terms", "rep")
    code, out, err = cli(capsys, "approve", flow_run, "--approver", "alex kim", "--notes", "ok",
                         "--input", "deal_value=25000", "--input", "discount_percent=12.5")
    assert (code, err) == (0, "")
    assert sent == [(flow_run, {"deal_value": 25000, "discount_percent": 12.5, "decision": "approve",
                                "approver": "alex kim", "notes": "ok"})]
    assert type(sent[0][1]["deal_value"]) is int
    assert out == ("approved negotiation-closing/deal_terms as Alex Kim, deal_value: 25000, "
                   "discount_percent: 12.5; the run continues\n")


def test_approve_may_leave_out_optional_inputs(store, capsys, sent):
    flow_run = waiting_run("presentation-demo", "demo_outcome", "rep")
    code, _, err = cli(capsys, "approve", flow_run, "--approver", "Priya Shah", "--input", "outcome=interested")
    assert (code, err) == (0, "")
    assert sent[0][1] == {"outcome": "interested", "decision": "approve", "approver": "Priya Shah", "notes": ""}


def test_a_rejection_reads_rejected(store, capsys, sent):
    flow_run = waiting_run("lead-qualification", "rep_qualification", "rep")
    code, out, _ = cli(capsys, "approve", flow_run, "--approver", "Priya Shah", "--reject", "--notes", "No budget")
    assert (code, out) == (0, "rejected lead-qualification/rep_qualification as Priya Shah; the run continues\n")
    lead_id = new_lead()
    run_id = start("lead-qualification", lead_id)
    decide(run_id, "rep_qualification", "rep", "Priya Shah", decision="reject")
    assert "rejected by Priya Shah" in cli(capsys, "lead", "show", lead_id)[1]


def test_approve_off_the_roster_is_sent_then_exits_non_zero(store, capsys, sent):
    flow_run = waiting_run("lead-qualification", "rep_qualification", "rep")
    code, out, err = cli(capsys, "approve", flow_run, "--approver", "Bob Outsider", "--reject")
    assert (code, out) == (approvals_cli.OFF_ROSTER, "")
    assert sent == [(flow_run, {"decision": "reject", "approver": "Bob Outsider", "notes": ""})]  # recorded by the run
    assert err == ("sopflow approve: 'Bob Outsider' is not on the rep roster (Alex Kim, Priya Shah); the answer is "
                   "recorded and rep_qualification asks again, so ask one of them to answer\n")


def test_approve_without_a_waiting_ask_or_a_server_says_what_to_do(store, capsys):
    code, _, err = cli(capsys, "approve", "no-such-run", "--approver", "Alex Kim")
    assert code == 1 and "has no approval waiting" in err and err.count("\n") == 1
    flow_run = waiting_run("lead-qualification", "rep_qualification", "rep")
    code, _, err = cli(capsys, "approve", flow_run, "--approver", "Alex Kim")  # no Prefect server is known
    assert code == 1 and err == ("sopflow approve: no Prefect server is running for sopflow; "
                                 "start `sopflow up` or set PREFECT_API_URL\n")


# Piped into head: the reader goes away after one line.

def piped(args: str, reader: str) -> subprocess.CompletedProcess[str]:
    """`sopflow ARGS | READER` in a shell, with the pipeline's status being sopflow's."""
    return subprocess.run(
        ["bash", "-c", f"set -o pipefail; {sys.executable} -m sopflow.cli {args} | {reader}"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )


def test_output_piped_into_head_exits_0_without_a_traceback(store):
    with transaction() as session:  # more rows than a pipe buffers
        leads = [{"id": str(uuid.uuid4()), "email": f"l{i}@example.com", "company": f"Company {i}", "status": "new",
                  "fields": {}, "do_not_contact": False, "created_at": NOW, "updated_at": NOW} for i in range(1000)]
        session.execute(insert(Lead.__table__), leads)
        session.execute(insert(SopRun.__table__), [
            {"id": str(uuid.uuid4()), "sop_id": "lead-qualification", "lead_id": lead["id"], "state": "completed",
             "outcome": "completed", "flow_run_id": str(uuid.uuid4()), "sop_version": 1, "created_at": NOW,
             "started_at": NOW, "ended_at": NOW} for lead in leads])
    done = piped("runs", "head -1")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == ["Flow", "run", "SOP", "Company", "State", "Outcome", "Started", "(UTC)",
                                   "Ended", "(UTC)"]
    # A reader that is gone before sopflow writes a byte: every write meets a closed pipe.
    for args in ("runs", "runs --json", "leads", "outbox", "approvals"):
        done = piped(args, "true")
        assert (done.returncode, done.stderr) == (0, ""), args


def test_waited_reads_like_a_person_says_it():
    from sopflow.cli.output import waited

    now = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert [waited(now - delta, now) for delta in (
        timedelta(seconds=20), timedelta(minutes=12), timedelta(hours=3, minutes=12), timedelta(hours=3),
        timedelta(days=2, hours=4), timedelta(days=2, minutes=5))] == ["just now", "12m", "3h 12m", "3h", "2d 4h", "2d"]


def test_lead_add_stores_the_lead_even_without_prefect(store, capsys):
    added = cli_json(capsys, "lead", "add", "--email", "Ana@Example.com", "--name", "Ana", "--employees", "40",
                     "--do-not-contact")
    assert set(added) >= {"id", "created", "runs"} and added["created"] is True
    assert "not_started" in added  # no Prefect server: the runs start when `sopflow up` runs
    with transaction() as session:
        lead = session.get_one(Lead, added["id"])
        assert (lead.email, lead.employees, lead.do_not_contact) == ("ana@example.com", 40, True)
    code, out, _ = cli(capsys, "lead", "add", "--email", "ana@example.com")
    assert code == 0 and out.startswith(f"lead {added['id']} already known; SOP runs: ")
    code, out, err = cli(capsys, "lead", "add", "--email", "not-an-email", "--employees", "-1")
    assert (code, out) == (2, "")
    assert err.splitlines() == ["sopflow lead add: --email: Value error, not an email address",
                                "sopflow lead add: --employees: Input should be greater than or equal to 0"]


def test_every_command_and_option_has_help_text():
    import typer

    from sopflow.cli import app

    def commands(group, path=()):
        for name, command in getattr(group, "commands", {}).items():
            yield (*path, name), command
            yield from commands(command, (*path, name))

    found = dict(commands(typer.main.get_command(app)))
    assert {" ".join(path) for path in found} >= {
        "up", "validate", "schema", "lead", "lead add", "lead engage", "lead show", "leads", "approvals", "approve",
        "wake", "runs", "outbox"}
    for path, command in found.items():
        assert command.help, path
        for param in command.params:
            assert getattr(param, "help", None), (path, param.name)


def test_the_cli_starts_without_what_only_help_errors_or_prefect_commands_need():
    """Every command pays for what `sopflow.cli` imports: typer's rich error and help formatting (with rich's
    Markdown) is imported when a usage error is shown, Prefect by the commands that talk to it."""
    probe = "import sys, sopflow.cli; print(sorted(m for m in sys.argv[1:] if m in sys.modules))"
    heavy = ["typer.rich_utils", "rich.markdown", "prefect"]
    loaded = subprocess.run([sys.executable, "-c", probe, *heavy], capture_output=True, text=True, check=True)
    assert loaded.stdout.strip() == "[]"
    error = subprocess.run([sys.executable, "-m", "sopflow.cli", "approvals", "--bogus"], capture_output=True, text=True)
    assert error.returncode == 2 and "No such option: --bogus" in error.stderr
