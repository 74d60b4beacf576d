"""Scheduled SOP reviews on SQLite and PostgreSQL: due dates, one review per (SOP, due date), outcomes."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select

from sopflow.catalog import load_all
from sopflow.loader import LoadedSop
from sopflow.settings import PROJECT_ROOT
from sopflow.store import reviews
from sopflow.store.db import transaction
from sopflow.store.models import Review
from tests.unit.test_store import in_threads

SOPS = load_all(PROJECT_ROOT / "sop_definitions")
QUALIFY = SOPS["lead-qualification"]  # review every 12w
TODAY = date(2026, 11, 23)


def at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, 15, 30, tzinfo=timezone.utc)


def claim(url: str, sops: dict[str, LoadedSop], today: date = TODAY) -> list[tuple[str, date]]:
    with transaction(url) as session:
        return [(r.sop_id, r.due_on) for r in reviews.claim_due_reviews(session, sops, today)]


def decide(url: str | None, sop: LoadedSop, outcome: str, day: date, notes: str | None = None) -> int:
    """Claim the SOP's due review on `day` and decide it then, as Dana Reyes (the seed SOPs' ops)."""
    with transaction(url) as session:
        (review,) = reviews.claim_due_reviews(session, {sop.sop.id: sop}, day)
        reviews.record_outcome(session, review.id, outcome, "Dana Reyes", notes, at=at(day))
        return review.id


def status(url: str, sop_id: str = "lead-qualification") -> str:
    with transaction(url) as session:
        return reviews.sop_status(session, sop_id)


def newer(sop: LoadedSop) -> LoadedSop:
    return replace(sop, sop=sop.sop.model_copy(update={"version": sop.sop.version + 1}), content_hash="f" * 64)


def test_a_sop_never_reviewed_is_due_today(store_url):
    with transaction(store_url) as session:
        assert reviews.next_due(session, QUALIFY, TODAY) == TODAY
    assert claim(store_url, SOPS) == [(sop_id, TODAY) for sop_id in sorted(SOPS)]
    with transaction(store_url) as session:
        row = session.scalars(select(Review).where(Review.sop_id == "lead-qualification")).one()
        assert (row.state, row.outcome, row.sop_version, row.sop_hash) == ("open", None, QUALIFY.sop.version, QUALIFY.content_hash)


def test_an_open_review_blocks_another(store_url):
    assert claim(store_url, {"lead-qualification": QUALIFY}, TODAY - timedelta(days=200)) != []
    assert claim(store_url, {"lead-qualification": QUALIFY}) == []  # long overdue, but still open
    with transaction(store_url) as session:
        assert reviews.next_due(session, QUALIFY, TODAY) == TODAY - timedelta(days=200)


def test_a_review_is_due_every_period_after_the_last_decision(store_url):
    decided = TODAY - timedelta(weeks=12) + timedelta(days=1)  # reviewed recently: due tomorrow
    decide(store_url, QUALIFY, "keep", decided)
    with transaction(store_url) as session:
        assert reviews.next_due(session, QUALIFY) == TODAY + timedelta(days=1)
    assert claim(store_url, {"lead-qualification": QUALIFY}) == []
    assert claim(store_url, {"lead-qualification": QUALIFY}, TODAY + timedelta(days=1)) == [
        ("lead-qualification", TODAY + timedelta(days=1))]


def test_an_overdue_review_is_due_on_the_day_it_fell_due(store_url):
    decide(store_url, QUALIFY, "keep", TODAY - timedelta(weeks=30))
    assert claim(store_url, {"lead-qualification": QUALIFY}) == [
        ("lead-qualification", TODAY - timedelta(weeks=18))]
    assert claim(store_url, {"lead-qualification": QUALIFY}) == []


def test_concurrent_schedulers_claim_each_review_exactly_once(store_url):
    claimed = in_threads(4, lambda: claim(store_url, SOPS))
    assert sorted(c for batch in claimed for c in batch) == [(sop_id, TODAY) for sop_id in sorted(SOPS)]
    with transaction(store_url) as session:
        assert session.scalar(select(func.count()).select_from(Review)) == len(SOPS)


def test_an_outcome_is_recorded_once(store_url):
    review_id = decide(store_url, QUALIFY, "revise", TODAY)
    with transaction(store_url) as session:
        again = reviews.record_outcome(session, review_id, "keep", "Someone Else", "changed my mind")
        assert (again.state, again.outcome, again.reviewer, again.notes) == ("done", "revise", "Dana Reyes", None)
        assert again.decided_at == at(TODAY)
        with pytest.raises(ValueError, match="not a review outcome"):
            reviews.record_outcome(session, review_id, "shrug", "Dana Reyes", None)


def test_status_follows_the_decisions(store_url):
    assert status(store_url) == "active"
    decide(store_url, QUALIFY, "keep", TODAY - timedelta(weeks=48))
    assert status(store_url) == "active"
    decide(store_url, QUALIFY, "revise", TODAY - timedelta(weeks=36))
    assert status(store_url) == "needs_revision"
    decide(store_url, QUALIFY, "keep", TODAY - timedelta(weeks=24))  # the same text kept: still to revise
    assert status(store_url) == "needs_revision"
    decide(store_url, newer(QUALIFY), "keep", TODAY - timedelta(weeks=12))  # the revised version kept
    assert status(store_url) == "active"
    decide(store_url, newer(QUALIFY), "retire", TODAY)
    assert status(store_url) == "retired"
    assert status(store_url, "prospecting") == "active"  # another SOP's reviews are its own


def test_a_retired_sop_is_never_due_again(store_url):
    decide(store_url, QUALIFY, "retire", TODAY - timedelta(weeks=30))
    with transaction(store_url) as session:
        assert reviews.next_due(session, QUALIFY, TODAY) is None
        assert reviews.retired(session, ["lead-qualification", "prospecting"]) == {"lead-qualification"}
    assert claim(store_url, {"lead-qualification": QUALIFY}, TODAY + timedelta(weeks=100)) == []


def test_a_revised_sop_is_due_at_once_when_its_file_changes(store_url):
    decide(store_url, QUALIFY, "revise", TODAY - timedelta(days=3))
    with transaction(store_url) as session:
        assert reviews.next_due(session, QUALIFY, TODAY) == TODAY - timedelta(days=3) + timedelta(weeks=12)
        assert reviews.next_due(session, newer(QUALIFY), TODAY) == TODAY  # the revision waits for its review
    assert claim(store_url, {"lead-qualification": newer(QUALIFY)}) == [("lead-qualification", TODAY)]


def test_reviews_without_a_run_and_the_previous_decision(store_url):
    first = decide(store_url, QUALIFY, "keep", TODAY - timedelta(weeks=12))
    claim(store_url, SOPS)
    with transaction(store_url) as session:
        waiting = reviews.without_run(session)
        assert sorted(r.sop_id for r in waiting) == sorted(SOPS)
        qualify = next(r for r in waiting if r.sop_id == "lead-qualification")
        assert reviews.previous_decision(session, qualify) == at(TODAY - timedelta(weeks=12))
        assert reviews.previous_decision(session, session.get_one(Review, first)) is None
        reviews.attach_flow_run(session, qualify.id, "run-1")
        reviews.attach_flow_run(session, qualify.id, "run-2")  # the first flow run stays
        assert qualify.flow_run_id == "run-1"
        assert "lead-qualification" not in {r.sop_id for r in reviews.without_run(session)}
