"""The review packet's figures from a known history, on SQLite and PostgreSQL, and its Markdown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from sopflow.leads import LeadIn
from sopflow.loader import load_sop
from sopflow.review_packet import packet, packet_markdown, percentile
from sopflow.settings import PROJECT_ROOT
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.feedback import add_feedback
from sopflow.store.leads import add_lead
from sopflow.store.models import Feedback

QUALIFY = load_sop(PROJECT_ROOT / "sop_definitions" / "lead-qualification.yaml")
T0 = datetime(2026, 11, 1, 9, 0, tzinfo=timezone.utc)
H = 3600
# Answered asks' waits, in hours: rep_qualification for runs 3-9 (run 3 was first answered by someone off the
# roster, after half an hour), manager_approval for runs 3-8 (run 9 still waits for it).
REP_WAITS = {3: 1, 4: 2, 5: 3, 6: 4, 7: 5, 8: 6, 9: 8}
MANAGER_WAITS = {3: 1, 4: 5, 5: 6, 6: 7, 7: 24, 8: 48}


def record(session, run_id: str, step_id: str, kind: str, start: datetime, seconds: float, status="completed"):
    runs.record_step(session, run_id, step_id, kind, status, {}, start).ended_at = start + timedelta(seconds=seconds)


def answer(session, run_id: str, step_id: str, asked: datetime, hours: float, decision="approve", notes="",
           refusal=None) -> datetime:
    ask = approvals.open_ask(session, run_id, step_id, "role", "?", None)
    ask.asked_at = asked
    approvals.record_answer(session, ask.id, decision, "Maria Lopez", notes, refusal)
    ask.answered_at = asked + timedelta(hours=hours)
    return ask.answered_at


def new_run(session, i: int, created: datetime, state: str, outcome: str | None, lead_status: str) -> str:
    lead = add_lead(session, LeadIn(email=f"lead{i}@example.com"))[0]
    lead.status = lead_status
    run = runs.ensure_run(session, "lead-qualification", lead.id)
    run.created_at, run.started_at, run.state, run.outcome = created, created, state, outcome
    return run.id


def seed(url: str) -> None:
    """10 runs since T0: 3 to nurture, 4 qualified, 2 rejected at manager_approval, 1 waiting; 1 older failed run."""
    with transaction(url) as session:
        new_run(session, 99, T0 - timedelta(days=60), "failed", "failed at score_lead: TimeoutError", "new")
        for i in range(10):
            start = T0 + timedelta(days=i)
            state, outcome, status = "completed", "completed", "nurture"
            if 3 <= i <= 6:
                status = "qualified"
            elif i in (7, 8):
                outcome, status = "rejected at manager_approval", "disqualified"
            elif i == 9:
                state, outcome, status = "waiting", None, "new"
            run_id = new_run(session, i, start, state, outcome, status)
            record(session, run_id, "score_lead", "score", start, i + 1)  # 1..10 s
            if i < 3:
                record(session, run_id, "send_to_nurture", "update_lead", start, 2)
                continue
            record(session, run_id, "send_to_nurture", "update_lead", start, 0, "skipped")
            asked = start + timedelta(minutes=1)
            first = asked
            if i == 3:
                asked = answer(session, run_id, "rep_qualification", asked, 0.5, refusal="not on the roster")
            asked = answer(session, run_id, "rep_qualification", asked, REP_WAITS[i])
            record(session, run_id, "rep_qualification", "approval", first, (asked - first).total_seconds())
            if i == 9:
                approvals.open_ask(session, run_id, "manager_approval", "manager", "?", None).asked_at = asked
                continue
            decision = "approve" if i <= 6 else "reject"
            answered = answer(session, run_id, "manager_approval", asked, MANAGER_WAITS[i], decision, "checked BANT")
            record(session, run_id, "manager_approval", "approval", asked, MANAGER_WAITS[i] * H)
            record(session, run_id, "mark_qualified" if i <= 6 else "disqualify", "update_lead", answered, 1)


def test_percentiles_are_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([7.0], 90) == 7.0
    assert percentile([2.0, 1.0], 50) == 1.0  # an even count: the lower middle value
    assert [percentile(list(range(10, 0, -1)), p) for p in (50, 90, 100)] == [5, 9, 10]


def test_packet_figures_from_a_known_history(store_url):
    seed(store_url)
    with transaction(store_url) as session:
        figures = packet(session, QUALIFY, T0)
    assert figures["objective"] == {"statement": "Increase qualified leads by 20% within the next quarter",
                                    "metric": "qualified leads per quarter", "baseline": 120, "target": 144,
                                    "deadline": "2027-03-31"}
    assert figures["progress"] == {
        "runs": 10, "started": 10, "completed": 7, "rejected": 2, "failed": 0, "waiting": 1, "running": 0,
        "pending": 0, "cancelled": 0, "rejected_at": {"manager_approval": 2}, "failed_at": {},
        "outcomes": {"completed": 7, "rejected at manager_approval": 2},
        "lead_statuses": {"disqualified": 2, "new": 1, "nurture": 3, "qualified": 4},
    }
    steps = {s["step_id"]: s for s in figures["steps"]}
    assert [s["step_id"] for s in figures["steps"]] == [step.id for step in QUALIFY.sop.steps]
    assert steps["score_lead"] == {"step_id": "score_lead", "kind": "score", "count": 10, "skipped": 0,
                                   "median_seconds": 5, "p90_seconds": 9, "wait_median_seconds": 5,
                                   "wait_p90_seconds": 9}
    assert (steps["send_to_nurture"]["count"], steps["send_to_nurture"]["skipped"]) == (3, 7)
    assert steps["rep_qualification"] == {
        "step_id": "rep_qualification", "kind": "approval", "count": 7, "skipped": 0,
        "median_seconds": 4 * H, "p90_seconds": 8 * H,  # first ask to accepted answer: 1.5, 2, 3, 4, 5, 6, 8 h
        "asks": 8, "open_asks": 0,
        "wait_median_seconds": 3 * H, "wait_p90_seconds": 8 * H,  # each ask: 0.5, 1, 2, 3, 4, 5, 6, 8 h
    }
    assert steps["manager_approval"] == {
        "step_id": "manager_approval", "kind": "approval", "count": 6, "skipped": 0,
        "median_seconds": 6 * H, "p90_seconds": 48 * H, "asks": 7, "open_asks": 1,
        "wait_median_seconds": 6 * H, "wait_p90_seconds": 48 * H,
    }
    assert steps["follow_up_email"]["count"] == 0 and steps["follow_up_email"]["median_seconds"] is None
    assert figures["waits_longest"] == [
        {"step_id": "manager_approval", "median_seconds": 6 * H},
        {"step_id": "rep_qualification", "median_seconds": 3 * H},
        {"step_id": "score_lead", "median_seconds": 5},
        {"step_id": "send_to_nurture", "median_seconds": 2},
        {"step_id": "disqualify", "median_seconds": 1},
        {"step_id": "mark_qualified", "median_seconds": 1},
    ]
    # rep_qualification: 7 accepted answers, all approve without notes (the refused one does not count);
    # manager_approval: 6 accepted answers, every one with notes
    assert figures["automation_candidates"] == [
        {"step_id": "rep_qualification", "accepted": 7, "approved_without_notes": 7, "share": 1.0}]
    assert figures["feedback"] == []


def test_since_none_counts_every_run(store_url):
    seed(store_url)
    with transaction(store_url) as session:
        progress = packet(session, QUALIFY, None)["progress"]
    assert (progress["runs"], progress["failed"], progress["failed_at"]) == (11, 1, {"score_lead": 1})
    assert progress["lead_statuses"]["new"] == 2


def test_automation_needs_enough_answers_and_ninety_percent_plain(store_url):
    with transaction(store_url) as session:
        for i in range(10):
            run_id = new_run(session, i, T0, "completed", "completed", "qualified")
            answer(session, run_id, "rep_qualification", T0, 1, notes="" if i else "budget confirmed")  # 9 of 10
            if i < 4:  # 4 answers, all plain: too few to judge
                answer(session, run_id, "manager_approval", T0, 1)
            if i < 5:  # 4 of 5 plain: 80%
                answer(session, run_id, "custom_check", T0, 1, notes="   " if i else "why")
        candidates = packet(session, QUALIFY, None)["automation_candidates"]
    assert candidates == [{"step_id": "rep_qualification", "accepted": 10, "approved_without_notes": 9,
                           "share": 0.9}]


def test_feedback_since_the_last_review_is_in_the_packet(store_url):
    with transaction(store_url) as session:
        add_feedback(session, "lead-qualification", 1, QUALIFY.content_hash, "old news", "cli")
        session.flush()
        for row in session.scalars(select(Feedback)):
            row.created_at = T0 - timedelta(days=1)
        add_feedback(session, "lead-qualification", 1, QUALIFY.content_hash, "Manager approval takes | too long",
                     "approval", step_id="manager_approval", given_by="Alex Kim")
        add_feedback(session, "prospecting", 1, "0" * 64, "another SOP's", "cli")
        figures = packet(session, QUALIFY, T0)
    assert [(f["text"], f["step_id"], f["given_by"], f["version"], f["source"]) for f in figures["feedback"]] == [
        ("Manager approval takes | too long", "manager_approval", "Alex Kim", 1, "approval")]
    assert "- Manager approval takes \\| too long (Alex Kim, manager_approval, v1)" in packet_markdown(figures)


def test_markdown_shows_the_key_figures(store_url):
    seed(store_url)
    with transaction(store_url) as session:
        text = packet_markdown(packet(session, QUALIFY, T0))
    assert text.startswith("## Review of Lead qualification and needs assessment (lead-qualification, version 2)")
    for expected in [
        "| Increase qualified leads by 20% within the next quarter | qualified leads per quarter | 120 | 144 "
        "| 2027-03-31 |",
        "| 10 | 10 | 7 | 2 | 0 | 1 | 0 | 0 |",
        "| manager_approval | 2 |",
        "| score_lead | score | 10 | 0 | 5s | 9s | 5s | 9s |",
        "| rep_qualification | approval | 7 | 0 | 4h | 8h | 3h | 8h |",
        "| manager_approval | approval | 6 | 0 | 6h | 2d | 6h | 2d |",
        "1. manager_approval: median 6h\n2. rep_qualification: median 3h",
        "| rep_qualification | 7 | 7 | 100% |",
        "No feedback recorded.",
    ]:
        assert expected in text
