"""Scheduled SOP reviews: which are due, claimed once per (SOP, due date), and what they decided.

An SOP never reviewed is due today; after a decided review it is due `review.every` after the day
(UTC) the review was decided; while a review of it is open it is not due again.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from sopflow.durations import parse_duration
from sopflow.loader import LoadedSop
from sopflow.store.db import get_or_create
from sopflow.store.models import Review, utcnow

OUTCOMES = ("keep", "revise", "retire")
STATUSES = ("active", "needs_revision", "retired")


def open_review(session: Session, sop_id: str) -> Review | None:
    """The SOP's review waiting for a decision, or None."""
    query = select(Review).where(Review.sop_id == sop_id, Review.state == "open").order_by(Review.due_on)
    return session.scalars(query).first()


def decided(session: Session, sop_id: str) -> list[Review]:
    """The SOP's decided reviews, oldest decision first."""
    query = select(Review).where(Review.sop_id == sop_id, Review.state == "done")
    return list(session.scalars(query.order_by(Review.decided_at, Review.id)))


def _utc_today() -> date:
    return datetime.now(timezone.utc).date()


def next_due(session: Session, sop: LoadedSop, today: date | None = None) -> date | None:
    """When the SOP's next review is due (None: retired, never again).

    Its open review's due date; else, sent back for revision and changed since (another content
    hash), `today`; else the last decision's day (UTC) plus `review.every`; else (never reviewed)
    `today` (default: today in UTC).
    """
    waiting = open_review(session, sop.sop.id)
    if waiting is not None:
        return waiting.due_on
    done = decided(session, sop.sop.id)
    if not done:
        return today or _utc_today()
    status, revised_hash = status_of(done)
    if status == "retired":
        return None
    if status == "needs_revision" and revised_hash != sop.content_hash:
        return today or _utc_today()
    last = done[-1].decided_at
    assert last is not None  # a done review has its decision time
    return last.astimezone(timezone.utc).date() + parse_duration(sop.sop.review.every)


def claim_due_reviews(session: Session, sops: Mapping[str, LoadedSop], today: date) -> list[Review]:
    """Open a review of every SOP in `sops` that is due by `today`; return only those this call opened.

    Idempotent under concurrency: a review is one row per (SOP, due date), so a scheduler racing
    this one either finds the row or loses the insert (the unique constraint) and leaves it alone.
    """
    claimed = []
    for sop_id in sorted(sops):
        loaded = sops[sop_id]
        if open_review(session, sop_id) is not None:
            continue
        due_on = next_due(session, loaded, today)
        if due_on is None or due_on > today:
            continue
        fresh = Review(sop_id=sop_id, due_on=due_on, sop_version=loaded.sop.version, sop_hash=loaded.content_hash,
                       state="open")
        query = select(Review).where(Review.sop_id == sop_id, Review.due_on == due_on)
        if get_or_create(session, query, lambda: fresh) is fresh:
            claimed.append(fresh)
    return claimed


def without_run(session: Session) -> list[Review]:
    """Open reviews whose review run was not started yet (claimed, then the scheduler stopped), oldest first."""
    query = select(Review).where(Review.state == "open", Review.flow_run_id.is_(None))
    return list(session.scalars(query.order_by(Review.due_on, Review.id)))


def previous_decision(session: Session, review: Review) -> datetime | None:
    """When the SOP's review before `review` was decided (its packet covers what happened since), or None."""
    query = select(Review.decided_at).where(Review.sop_id == review.sop_id, Review.state == "done",
                                            Review.id != review.id)
    return session.scalar(query.order_by(Review.decided_at.desc()).limit(1))


def attach_flow_run(session: Session, review_id: int, flow_run_id: str) -> Review:
    """Note the flow run that carries the review (set once; later calls keep the first)."""
    review = session.get_one(Review, review_id, with_for_update=True)
    review.flow_run_id = review.flow_run_id or flow_run_id
    return review


def record_outcome(
    session: Session, review_id: int, outcome: str, reviewer: str, notes: str | None, at: datetime | None = None
) -> Review:
    """Decide review `review_id` (keep, revise or retire), once: a repeated call returns the stored decision
    unchanged. `at` is when it was decided (default: now)."""
    if outcome not in OUTCOMES:
        raise ValueError(f"{outcome!r} is not a review outcome; expected one of {', '.join(OUTCOMES)}")
    review = session.get_one(Review, review_id, with_for_update=True)
    if review.state == "open":
        review.state, review.outcome, review.reviewer, review.notes = "done", outcome, reviewer, notes or None
        review.decided_at = at or utcnow()
        session.flush()
    return review


def sop_status(session: Session, sop_id: str) -> str:
    """'active', 'needs_revision' or 'retired', from the SOP's decided reviews in the order decided.

    retire makes it 'retired' for good; revise makes it 'needs_revision' until a review of another
    version (a different content hash than the one revised) is decided keep; keep otherwise makes it 'active'.
    """
    return status_of(decided(session, sop_id))[0]


def status_of(done: list[Review]) -> tuple[str, str | None]:
    """The status the decided reviews `done` (oldest first) leave, and the content hash sent back for revision."""
    status, revised_hash = "active", None
    for review in done:
        if review.outcome == "retire":
            return "retired", None
        if review.outcome == "revise":
            status, revised_hash = "needs_revision", review.sop_hash
        elif review.sop_hash != revised_hash:  # keep of a version other than the one sent back for revision
            status, revised_hash = "active", None
    return status, revised_hash


def retired(session: Session, sop_ids: Collection[str]) -> set[str]:
    """Which of `sop_ids` a review retired (one query): they start no new runs."""
    query = select(Review.sop_id).where(Review.sop_id.in_(sop_ids), Review.outcome == "retire")
    return set(session.scalars(query))
