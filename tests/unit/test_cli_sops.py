"""`sopflow sops` (the catalogue) and the reviews `sopflow history` shows, against a real store (SQLite, PostgreSQL)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from sopflow.catalog import load_all, validate_report
from sopflow.cli.catalogue import trigger_words
from sopflow.leads import LeadIn
from sopflow.loader import load_sop
from sopflow.schema import Trigger
from sopflow.store.db import engine, transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import SopRun
from tests.unit.test_cli import cli, cli_json
from tests.unit.test_reviews import decide
from tests.unit.test_versions import sop_dir  # noqa: F401  (the fixture: seed SOPs copied, the store configured)

DECIDED = date(2026, 8, 28)  # every SOP here is reviewed every 12 weeks: next due 2026-11-20
NEXT = "2026-11-20"


def runs_in(sop_id: str, *states: str) -> None:
    """One run of `sop_id` in each of `states`, each for a lead of its own."""
    with transaction() as session:
        for state in states:
            lead = add_lead(session, LeadIn(email=f"{uuid.uuid4().hex[:8]}@example.com"))[0]
            session.add(SopRun(sop_id=sop_id, lead_id=lead.id, state=state))


def utc_today() -> str:
    return datetime.now(timezone.utc).date().isoformat()


def test_sops_lists_every_sop_with_its_review_and_runs_by_state(sop_dir, capsys):
    sops = load_all(sop_dir)
    runs_in("lead-qualification", "completed", "completed", "waiting", "failed", "pending")
    runs_in("presentation-demo", "running")
    runs_in("prospecting", "completed", "cancelled")
    decide(None, sops["lead-qualification"], "keep", DECIDED)
    decide(None, sops["negotiation-closing"], "revise", DECIDED)
    decide(None, sops["prospecting"], "retire", DECIDED)

    before = utc_today()
    rows = {r["sop"]: r for r in cli_json(capsys, "sops")}
    today = {before, utc_today()}  # never reviewed: due today (UTC)
    assert list(rows) == sorted(sops)
    assert set(rows["lead-qualification"]) == {
        "sop", "name", "version", "content_hash", "trigger", "owner", "review_owner", "next_review", "review_status",
        "review_run_id", "pending", "waiting", "running", "completed", "failed", "cancelled"}
    qualify = rows["lead-qualification"]
    assert [qualify[key] for key in ("name", "version", "content_hash", "owner", "review_owner")] == [
        "Lead qualification and needs assessment", 1, sops["lead-qualification"].content_hash,
        "Dana Reyes (Sales Operations)", "ops"]
    assert {sop_id: r["trigger"] for sop_id, r in rows.items()} == {
        "lead-qualification": "new lead", "negotiation-closing": "lead status opportunity",
        "order-processing": "lead status customer", "post-sale-follow-up": "lead status customer",
        "presentation-demo": "lead status qualified", "prospecting": "lead status nurture"}
    assert {sop_id: r["review_status"] for sop_id, r in rows.items()} == {
        "lead-qualification": "active", "negotiation-closing": "needs_revision", "order-processing": "active",
        "post-sale-follow-up": "active", "presentation-demo": "active", "prospecting": "retired"}
    assert rows["lead-qualification"]["next_review"] == NEXT
    assert rows["negotiation-closing"]["next_review"] == NEXT  # the revised text is still on file: due as usual
    assert rows["prospecting"]["next_review"] is None
    assert rows["order-processing"]["next_review"] in today
    states = ("pending", "waiting", "running", "completed", "failed", "cancelled")
    assert {sop_id: tuple(r[s] for s in states) for sop_id, r in rows.items()} == {
        "lead-qualification": (1, 1, 0, 2, 1, 0), "negotiation-closing": (0, 0, 0, 0, 0, 0),
        "order-processing": (0, 0, 0, 0, 0, 0), "post-sale-follow-up": (0, 0, 0, 0, 0, 0),
        "presentation-demo": (0, 0, 1, 0, 0, 0), "prospecting": (0, 0, 0, 1, 0, 1)}

    code, out, err = cli(capsys, "sops")
    assert (code, err) == (0, "")
    lines = {line.split()[0]: line for line in out.splitlines()[2:]}
    assert out.splitlines()[0].split() == ["SOP", "Version", "Trigger", "Owner", "Next", "review", "Review", "status",
                                           "Waiting", "Running", "Completed", "Failed"]
    assert lines["lead-qualification"].split() == [
        "lead-qualification", "v1", "new", "lead", "Dana", "Reyes", "(Sales", "Operations)", NEXT, "active",
        "1", "0", "2", "1"]
    assert lines["prospecting"].split()[-6:] == ["-", "retired", "0", "0", "1", "0"]


def test_runs_accepts_the_cancelled_state(sop_dir, capsys):
    runs_in("prospecting", "cancelled", "pending")
    assert [r["state"] for r in cli_json(capsys, "runs", "--state", "cancelled")] == ["cancelled"]


def test_triggers_read_in_words():
    assert trigger_words(Trigger(event="new_lead")) == "new lead"
    assert trigger_words(Trigger(event="lead_status", status="qualified")) == "lead status qualified"
    assert trigger_words(Trigger(cron="0 9 * * 1")) == "cron 0 9 * * 1"
    assert trigger_words(Trigger(cron="0 9 * * 1", timezone="Europe/Berlin")) == "cron 0 9 * * 1 (Europe/Berlin)"


def test_sops_with_no_valid_sop_files_says_where_it_looked(sop_dir, tmp_path, monkeypatch, capsys):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(empty))
    assert cli(capsys, "sops") == (0, f"no valid SOP files in {empty}; `sopflow validate` says why\n", "")
    assert cli_json(capsys, "sops") == []


def test_history_lists_each_review_under_the_version_it_reviewed(sop_dir, capsys):
    path = sop_dir / "lead-qualification.yaml"
    first = load_sop(path)
    engine()  # the store made, so loading the SOPs stores v1's text
    assert validate_report([sop_dir], against_store=True).errors == []
    decide(None, first, "keep", DECIDED, notes="Works as written")
    path.write_text(path.read_text().replace("\nversion: 1\n", "\nversion: 2\n"))
    decide(None, load_sop(path), "revise", DECIDED + timedelta(weeks=12))

    rows = cli_json(capsys, "history", "lead-qualification")
    assert [r["version"] for r in rows] == [1, 2]
    assert set(rows[0]) == {"sop", "version", "content_hash", "first_seen", "runs", "on_file", "reviews"}
    assert rows[0]["reviews"] == [{"outcome": "keep", "reviewer": "Dana Reyes",
                                   "decided_at": "2026-08-28T15:30:00+00:00", "notes": "Works as written",
                                   "due_on": DECIDED.isoformat()}]
    assert rows[1]["reviews"] == [{"outcome": "revise", "reviewer": "Dana Reyes",
                                   "decided_at": "2026-11-20T15:30:00+00:00", "notes": None, "due_on": NEXT}]

    code, out, err = cli(capsys, "history", "lead-qualification")
    assert (code, err) == (0, "")
    header, _rule, v1, v2 = out.splitlines()
    assert header.split()[-1] == "Reviews"
    assert v1.split()[-6:] == ["-", "keep", "by", "Dana", "Reyes", "2026-08-28"] and "revise" not in v1
    assert v2.split()[-6:] == ["yes", "revise", "by", "Dana", "Reyes", NEXT] and "keep" not in v2
