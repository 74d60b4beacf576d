"""What a review's outcome does, on SQLite and PostgreSQL: a retired SOP claims no new runs and its unstarted
ones are cancelled; revise and retire are warned about by `sopflow validate`; who may decide a review."""

from __future__ import annotations

from datetime import date

import pytest

from sopflow.catalog import validate_report
from sopflow.cli import main
from sopflow.leads import LeadIn
from sopflow.loader import load_sop
from sopflow.settings import PROJECT_ROOT
from sopflow.cli.approvals import OFF_ROSTER
from sopflow.store import reviews, runs
from sopflow.store.db import transaction
from sopflow.store.leads import admit_leads
from tasks.review import notes_problem, reviewer_problem
from tests.unit.test_reviews import decide
from tests.unit.test_versions import sop_dir  # noqa: F401  (the fixture: seed SOPs copied, the store configured)

QUALIFY_FILE = "lead-qualification.yaml"
DAY = date(2026, 11, 23)


def lead(email: str, sop_ids: list[str]) -> list[str]:
    """Admit a lead to `sop_ids`; the SOPs it claimed runs of."""
    with transaction() as session:
        return [run.sop for run in admit_leads(session, [LeadIn(email=email)], sop_ids)[0].runs]


def test_a_retired_sop_claims_no_new_runs_and_cancels_those_not_begun(sop_dir):
    qualify = load_sop(sop_dir / QUALIFY_FILE)
    both = ["prospecting", "lead-qualification"]
    assert lead("before@example.com", both) == both
    assert lead("running@example.com", both) == both
    with transaction() as session:
        started = runs.run_of(session, "lead-qualification", admit_leads(
            session, [LeadIn(email="running@example.com")], [])[0].lead_id)
        runs.begin_run(session, "lead-qualification", started.lead_id, "flow-run-1", 1, qualify.content_hash)
    decide(None, qualify, "retire", DAY)
    with transaction() as session:
        reason = "not started: retired"
        assert runs.cancel_unstarted(session, "lead-qualification", reason) == 1  # not the one that began
        assert runs.unstarted(session, ["lead-qualification"]) == 0
        states = sorted((run.state, run.outcome) for run in runs.list_runs(session, "lead-qualification"))
    assert states == [("cancelled", reason), ("running", None)]
    assert lead("after@example.com", both) == ["prospecting"]  # the retired SOP claims nothing


def test_validate_warns_about_a_sop_sent_back_for_revision_then_about_its_new_version(sop_dir, capsys):
    path = sop_dir / QUALIFY_FILE
    decide(None, load_sop(path), "revise", DAY, "the rep's checklist misses budget")
    report = validate_report([sop_dir], against_store=True)
    (warning,) = [w for w in report.warnings if w.field == "review"]
    assert (warning.file, warning.line) == (path, 22)  # the review line of the file
    assert "sent this version back for revision; change it and raise its version" in warning.reason
    assert "by Dana Reyes" in warning.reason and "2026-11-23" in warning.reason
    assert main(["validate"]) == 0
    assert f"{path}:22: review: warning:" in capsys.readouterr().err

    path.write_text(path.read_text().replace("\nversion: 1\n", "\nversion: 2\n"))
    (warning,) = [w for w in validate_report([sop_dir], against_store=True).warnings if w.field == "review"]
    assert "sent v1 back for revision; this version is reviewed at the next daily review run" in warning.reason
    loaded = {item.sop.id: item for item in validate_report([sop_dir], against_store=True).loaded}
    assert warning in loaded["lead-qualification"].warnings  # `sopflow up` prints each SOP's warnings


def test_validate_warns_about_a_retired_sop_and_nothing_else(sop_dir):
    decide(None, load_sop(sop_dir / QUALIFY_FILE), "retire", DAY)
    warnings = [w for w in validate_report([sop_dir], against_store=True).warnings if w.field == "review"]
    assert [(w.file.name, w.reason.split(": ")[0]) for w in warnings] == [
        (QUALIFY_FILE, "the review of 2026-11-23 by Dana Reyes (see `sopflow history lead-qualification`) retired "
                       "this SOP")]


@pytest.mark.parametrize("reviewer, outcome, notes, problem", [
    ("dana reyes", "keep", "", None),
    ("Dana Reyes", "revise", "add a budget check", None),
    ("Alex Kim", "keep", "", "'Alex Kim' is not on the ops roster (Dana Reyes); ask one of them to answer"),
    ("Dana Reyes", "revise", "  ", "revise needs notes that say what must change"),
    ("Dana Reyes", "keep", "fine\u202e",
     "the notes contain a control or invisible character (U+202E at position 5); remove it"),
])
def test_who_may_decide_a_review_and_with_what(reviewer, outcome, notes, problem):
    qualify = load_sop(PROJECT_ROOT / "sop_definitions" / QUALIFY_FILE)
    assert (reviewer_problem(qualify, reviewer) or notes_problem(outcome, notes)) == problem


def open_with_run(sop_dir, flow_run_id: str | None = "0f7c1c9e-2b7d-4c1b-9d55-4c2f3f1d8a10") -> None:
    """Open lead-qualification's review (its text stored, as the daily run does), carried by `flow_run_id`."""
    loaded = validate_report([sop_dir], against_store=True).loaded  # stores each text
    with transaction() as session:
        (review,) = reviews.claim_due_reviews(session, {i.sop.id: i for i in loaded if i.sop.id == "lead-qualification"},
                                              DAY)
        if flow_run_id:
            reviews.attach_flow_run(session, review.id, flow_run_id)


@pytest.mark.parametrize("args, code, says", [
    (["keep", "--reviewer", "Alex Kim"], OFF_ROSTER,
     "'Alex Kim' is not on the ops roster (Dana Reyes); ask one of them to answer; nothing was sent"),
    (["revise", "--reviewer", "Dana Reyes"], 2, "--notes: revise needs notes that say what must change; nothing was sent"),
    (["keep", "--reviewer", "Dana Reyes", "--notes", "ok\x1b[2J"], 2, "control or invisible character (U+001B"),
])
def test_review_from_the_cli_refuses_before_sending(sop_dir, capsys, args, code, says):
    open_with_run(sop_dir)
    assert main(["review", "lead-qualification", *args]) == code
    assert says in capsys.readouterr().err
    with transaction() as session:
        assert reviews.open_review(session, "lead-qualification").state == "open"  # nothing decided


def test_review_from_the_cli_needs_an_open_review(sop_dir, capsys):
    assert main(["review", "lead-qualification", "keep", "--reviewer", "Dana Reyes"]) == 1
    assert ("sopflow review: no review of lead-qualification is open (next due "
            in capsys.readouterr().err)
    assert main(["review", "lead-qualifcation", "keep", "--reviewer", "Dana Reyes"]) == 1
    assert "no SOP is called 'lead-qualifcation' (did you mean 'lead-qualification'?)" in capsys.readouterr().err
