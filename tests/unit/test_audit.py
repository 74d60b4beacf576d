"""Audits over a known history, on SQLite and PostgreSQL: each planted departure from the SOP is found, with its
run, step, person and evidence, and nothing in clean runs; adherence per SOP, step and person; the stored audit."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from sopflow.audit import audit
from sopflow.audit_report import summary_markdown
from sopflow.loader import load_sop_text
from sopflow.store import audits, versions
from sopflow.store.db import transaction
from sopflow.store.models import Approval, ApprovalLink, SlaAction
from tests.audit_history import APPROVED, LQ, PLANTED, plant, seed_run, swap
from tests.unit.test_cli import cli, cli_json
from tests.unit.test_kpi import SOPS
from tests.unit.test_versions import sop_dir  # noqa: F401  (the fixture: seed SOPs copied, the store configured)

UTC = timezone.utc
NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
SINCE = NOW - timedelta(days=7)
CRASHED = "11111111-1111-1111-1111-111111111111"


@pytest.fixture
def history(store_url):
    with transaction(store_url) as session:
        return plant(session, NOW, CRASHED)


def run_audit(store_url, **options):
    with transaction(store_url) as session:
        return audit(session, SOPS, SINCE, NOW, prefect_states={CRASHED: "CRASHED"}, **options)


def test_each_planted_departure_is_found_and_nothing_in_clean_runs(history, store_url):
    result = run_audit(store_url)
    label = {run_id: name for name, run_id in history.items() if name != "clean"}
    found: dict[str, set] = {}
    for f in result.findings:
        found.setdefault(label.get(f.sop_run_id, "CLEAN"), set()).add((f.kind, f.step_id, f.person))
    assert found == PLANTED
    assert result.runs == 4 + 12  # the run of 30 days ago is outside the window
    evidence = {(f.kind, label[f.sop_run_id]): f.evidence for f in result.findings}
    assert evidence["sla_missed", "late"] == ("rep_qualification took 72 h from 2026-11-18 12:02 UTC; "
                                              "due within 2d")
    assert "Bob Stranger, who is not on the manager roster of v2 (Maria Lopez)" in evidence["off_roster", "roster"]
    assert evidence["overdue", "overdue"].endswith("due 2026-11-20 06:00 UTC, 6 h ago")
    assert "who unsubscribed at 2026-11-17 12:00 UTC" in evidence["no_consent", "consent"]
    assert "@" not in " ".join(f.evidence for f in result.findings)  # lead ids, never addresses
    assert evidence["failed", "crashed"].endswith("is Crashed while the store says the run is running")
    assert evidence["failed", "failed"] == "the run failed: failed at follow_up_email: SMTPException"


def test_adherence_per_sop_step_and_person(history, store_url):
    adherence = run_audit(store_url).adherence
    assert adherence["sop"][LQ] == {"audited": 16, "clean": 4, "rate": 0.25}
    # rep_qualification: 8 records (3 clean runs, skipped, order, late, roster, consent, failed), missing and
    # overdue without one; flagged: missing, order, late, overdue
    assert adherence["step"][f"{LQ}/rep_qualification"] == {"audited": 10, "clean": 6, "rate": 0.6}
    assert adherence["person"]["Bob Stranger"] == {"audited": 1, "clean": 0, "rate": 0.0, "verified": 0,
                                                 "unverified": 1}
    assert adherence["person"]["Priya Shah"] == {"audited": 2, "clean": 1, "rate": 0.5, "verified": 0,
                                                "unverified": 2}
    assert adherence["person"]["Maria Lopez"]["rate"] == 1.0


def test_a_run_is_held_to_the_roster_of_the_version_it_followed(store_url):
    text = SOPS[LQ].path.read_text().replace("manager: [Maria Lopez]", "manager: [Maria Lopez, Sam Ortiz]")
    older = load_sop_text(text.replace("version: 2", "version: 1"), SOPS[LQ].path)
    with transaction(store_url) as session:
        versions.record_version(session, LQ, 1, older.content_hash, older.text)
        sam = swap(APPROVED, "manager_approval", result={"decision": "approve", "approver": "Sam Ortiz"})
        seed_run(session, sam, NOW, sop_hash=older.content_hash)
        now = seed_run(session, sam, NOW)
    flagged = {f.sop_run_id for f in run_audit(store_url).findings if f.kind == "off_roster"}
    assert flagged == {now.id}


def test_one_sop_only_and_the_audit_is_stored_whole(history, store_url):
    result = run_audit(store_url, sop_id="order-processing")
    assert (result.runs, result.findings) == (0, [])
    result = run_audit(store_url)
    with transaction(store_url) as session:
        stored = audits.record_audit(session, result, "flow-run-1")
    with transaction(store_url) as session:
        kept = audits.findings_of(session, stored.id)
        trend = audits.adherence_trend(session, LQ)
    assert len(kept) == len(result.findings) == 13  # two in the order run
    assert {f.kind for f in kept} == {"skipped_step", "out_of_order", "sla_missed", "off_roster", "overdue",
                                      "no_consent", "failed", "stuck"}
    assert trend == [{"until": NOW, "audited": 16, "clean": 4, "rate": 0.25}]


def test_sopflow_audit_stores_the_audit_and_report_shows_the_adherence(sop_dir, capsys):
    with transaction() as session:
        seed_run(session, APPROVED, datetime.now(UTC))
        seed_run(session, swap(APPROVED, "manager_approval", result={"decision": "approve", "approver": "Bob"}),
                 datetime.now(UTC))
    audited = cli_json(capsys, "audit", "--sop", LQ)
    assert (audited["runs"], [f["kind"] for f in audited["findings"]]) == (2, ["off_roster"])
    assert audited["findings"][0]["evidence"].startswith("answered by Bob, who is not on the manager roster of v1")
    assert audited["adherence"]["sop"] == {LQ: {"audited": 2, "clean": 1, "rate": 0.5}}

    code, out, err = cli(capsys, "audit")
    assert code == 0 and out.startswith("Audited 2 run(s) of every SOP from ")
    assert "1 finding(s), adherence 50%" in out.splitlines()[0]
    assert "answered off the roster" in out and "Adherence per SOP" in out
    assert "crashed flow runs not checked" not in err  # no run is under way: Prefect is not asked

    rows = {row["sop"]: row for row in cli_json(capsys, "report")}
    assert [(a["audited"], a["rate"]) for a in rows[LQ]["adherence"]] == [(2, 0.5), (2, 0.5)]
    assert rows["order-processing"]["adherence"] == []
    code, out, err = cli(capsys, "report", "--sop", LQ)
    assert "50% of 2 runs" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "2026-13-01"], "Invalid value for '--since'"),
    (["--since", "2999-01-01"], "sopflow audit: --since 2999-01-01 is not in the past; give a day before today"),
    (["--sop", "lead-qualificaton"], "(did you mean 'lead-qualification'?)"),
])
def test_sopflow_audit_refuses_bad_options_and_stores_nothing(sop_dir, capsys, args, message):
    try:
        code, _, err = cli(capsys, "audit", *args)
    except SystemExit as usage:  # typer's own checks (a day that is no date) exit as argparse did
        code, err = usage.code, capsys.readouterr().err
    assert code == 2 and message in " ".join(err.split())
    with transaction() as session:
        assert audits.recent(session) == []


def test_answers_through_a_signed_link_are_verified_and_sla_actions_are_listed(store_url):
    with transaction(store_url) as session:
        run = seed_run(session, APPROVED, NOW)
        asks = {}
        for step_id, approver in (("rep_qualification", "Alex Kim"), ("manager_approval", "Maria Lopez")):
            asks[step_id] = Approval(sop_run_id=run.id, step_id=step_id, ask=0, role="r", prompt="?", decision="approve",
                                     approver=approver, accepted=True, asked_at=NOW - timedelta(days=2),
                                     answered_at=NOW - timedelta(days=1), due_by=NOW - timedelta(days=1, hours=2))
            session.add(asks[step_id])
        session.flush()
        session.add_all([
            ApprovalLink(approval_id=asks["rep_qualification"].id, person="Alex Kim", expires_at=NOW,
                         used_at=NOW - timedelta(days=1), decision="approve"),
            ApprovalLink(approval_id=asks["manager_approval"].id, person="Maria Lopez", expires_at=NOW),  # unused
            SlaAction(approval_id=asks["manager_approval"].id, action_index=0, action="escalate",
                      detail={"to": "ops", "people": ["Dana Reyes"]}, due_at=NOW - timedelta(days=1, hours=1),
                      taken_at=NOW - timedelta(days=1, hours=1)),
        ])
    result = run_audit(store_url)
    people = result.adherence["person"]
    assert (people["Alex Kim"]["verified"], people["Alex Kim"]["unverified"]) == (1, 0)
    assert (people["Maria Lopez"]["verified"], people["Maria Lopez"]["unverified"]) == (0, 1)
    assert [(a.step_id, a.action, a.detail["to"]) for a in result.sla_actions] == [("manager_approval", "escalate",
                                                                                     "ops")]
    summary = summary_markdown(result, [])
    assert "| Alex Kim | 1 | 1 | 100% | 1 of 1 |" in summary and "| Maria Lopez | 1 | 1 | 100% | 0 of 1 |" in summary
    assert "| manager_approval | 1 | escalated to ops \\(Dana Reyes\\) |" in summary  # Markdown-escaped text


def test_an_escalated_role_and_sopflows_decision_may_answer(store_url):
    with transaction(store_url) as session:
        escalated = seed_run(session, swap(APPROVED, "rep_qualification", result={
            "decision": "approve", "approver": "Maria Lopez"}), NOW)  # manager, escalated to
        decided = seed_run(session, swap(APPROVED, "rep_qualification", result={
            "decision": "approve", "approver": "sopflow"}), NOW)
        for run, action, detail in ((escalated, "escalate", {"to": "manager", "people": ["Maria Lopez"]}),
                                    (decided, "decide", {"decision": "approve", "reason": "no answer"})):
            ask = Approval(sop_run_id=run.id, step_id="rep_qualification", ask=0, role="rep", prompt="?",
                           due_by=NOW - timedelta(days=1))
            session.add(ask)
            session.flush()
            session.add(SlaAction(approval_id=ask.id, action_index=0, action=action, detail=detail,
                                  due_at=NOW - timedelta(days=1)))
        unallowed = seed_run(session, swap(APPROVED, "rep_qualification", result={
            "decision": "approve", "approver": "Maria Lopez"}), NOW)  # not escalated: off the rep roster
    flagged = {f.sop_run_id for f in run_audit(store_url).findings if f.kind == "off_roster"}
    assert flagged == {unallowed.id}
