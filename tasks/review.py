"""The review run's tasks: open an SOP's review with its packet, and decide it when its owner answers."""

from __future__ import annotations

from typing import Any, Literal

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field
from sqlalchemy.orm import Session

from sopflow import settings
from sopflow.loader import LoadedSop
from sopflow.review_packet import packet, packet_markdown
from sopflow.store import reviews, runs
from sopflow.store.db import transaction
from sopflow.store.models import Review
from sopflow.text import notes_problem as text_notes_problem
from sopflow.versioning import stored_sop
from tasks.approval import refusal, roster_name

MAX_NOTES = 2000
OUTCOME_WORDS = {"keep": "kept", "revise": "sent back for revision", "retire": "retired"}
OUTCOME_HELP = ("keep: the SOP stays as it is, next review after its cadence; revise: it needs changes, `sopflow "
                "validate` and `sopflow up` say so until a new version is reviewed; retire: no new runs start, "
                "running ones finish")


class ReviewForm(RunInput):
    """The review's resume form in the Prefect UI."""

    outcome: Literal["keep", "revise", "retire"] = Field(description=OUTCOME_HELP)
    reviewer: str = Field(min_length=1, max_length=200, description="Your name, as the SOP's roster lists it.")
    notes: str = Field(default="", max_length=MAX_NOTES,
                       description="Why; for revise, what must change (required for revise).")


def reviewed_sop(session: Session, review: Review) -> LoadedSop:
    """The version of the SOP under review, from the store (recorded when the review was claimed)."""
    loaded = stored_sop(session, review.sop_id, review.sop_hash, settings.sop_dir() / f"{review.sop_id}.yaml")
    if loaded is None:
        raise LookupError(f"the text of {review.sop_id} v{review.sop_version} ({review.sop_hash[:12]}) under "
                          f"review {review.id} is not stored; run `sopflow validate` to store it, then retry the run")
    return loaded


def _decision(review: Review) -> dict[str, Any]:
    return {"status": "done", "sop_id": review.sop_id, "version": review.sop_version, "outcome": review.outcome,
            "reviewer": review.reviewer, "decided_at": review.decided_at.isoformat() if review.decided_at else None}


@task(cache_policy=NO_CACHE, task_run_name="review packet")
def open_review(review_id: int, sop_id: str) -> dict[str, Any]:
    """The open review's packet (its figures frozen the first time) and who may answer; its decision when decided.

    {"status": "unknown", "reason"} when no review of `sop_id` has this id (a run started by hand).
    """
    with transaction() as session:
        review = session.get(Review, review_id)
        if review is None or review.sop_id != sop_id:
            return {"status": "unknown", "reason": f"No review of {sop_id} has id {review_id}; review runs are "
                    "started by the daily sopflow-reviews-due run, one per SOP due (see `sopflow sops`)."}
        if review.state == "done":
            return _decision(review)
        loaded = reviewed_sop(session, review)
        first = review.packet is None
        if first:
            review.packet = packet(session, loaded, reviews.previous_decision(session, review))
        figures = review.packet
        role = loaded.sop.review.owner
        opened = {"status": "open", "sop_id": sop_id, "version": review.sop_version, "due_on": review.due_on.isoformat(),
                  "role": role, "roster": loaded.sop.people(role), "packet": packet_markdown(figures)}
    if first:
        create_markdown_artifact(key=f"review-{sop_id}", markdown=opened["packet"],
                                 description=f"Review packet of {sop_id} v{opened['version']}, due {opened['due_on']}")
    return opened


def review_description(opened: dict[str, Any], refusals: list[str]) -> str:
    """The resume form's Markdown: due date and who may answer, earlier refusals, then the packet (the outcome
    field says what each outcome does)."""
    lines = [f"**Due:** {opened['due_on']} · **Who may answer ({opened['role']}):** {', '.join(opened['roster'])}"]
    lines += [f"\n> Previous answer not accepted: {reason}" for reason in refusals]
    return "\n".join([*lines, "", opened["packet"]])


def reviewer_problem(loaded: LoadedSop, reviewer: str) -> str | None:
    """Why `reviewer` may not decide the SOP's review (not on its review owner role's roster), or None."""
    role = loaded.sop.review.owner
    roster = loaded.sop.people(role)
    return None if roster_name(roster, reviewer) else refusal(roster, role, reviewer)


def notes_problem(outcome: str, notes: str) -> str | None:
    """Why `notes` cannot go with `outcome` (control characters; revise without saying what to change), or None."""
    return text_notes_problem(notes, "revise needs notes that say what must change" if outcome == "revise" else None)


@task(cache_policy=NO_CACHE, task_run_name="decision")
def decide(review_id: int, form: ReviewForm) -> dict[str, Any]:
    """Record the outcome when the reviewer is on the roster and the notes fit, else say why (the flow asks again).

    retire also cancels the SOP's claimed runs that have not started; running ones finish.
    """
    with transaction() as session:
        review = session.get_one(Review, review_id)
        if review.state == "done":
            return _decision(review)
        loaded = reviewed_sop(session, review)
        problem = reviewer_problem(loaded, form.reviewer) or notes_problem(form.outcome, form.notes)
        if problem:
            get_run_logger().warning("Answer not accepted, asking again: %s", problem)
            return {"status": "refused", "reason": problem}
        name = roster_name(loaded.sop.people(loaded.sop.review.owner), form.reviewer)
        assert name is not None  # reviewer_problem refuses anyone off the roster
        review = reviews.record_outcome(session, review_id, form.outcome, name, form.notes.strip())
        decided = _decision(review)
        if form.outcome == "retire":
            decided["cancelled"] = runs.cancel_unstarted(
                session, review.sop_id, f"not started: {review.sop_id} was retired by its review on "
                f"{review.decided_at:%Y-%m-%d}")
        due = reviews.next_due(session, loaded)
        decided["next_due"] = due.isoformat() if due else None
    get_run_logger().info("%s", decision_words(decided))
    return decided


def decision_words(decided: dict[str, Any]) -> str:
    """The decision in one sentence, for the run's state message and log."""
    words = OUTCOME_WORDS[decided["outcome"]]
    after = f"; next review due {decided['next_due']}" if decided.get("next_due") else ""
    cancelled = f"; {decided['cancelled']} run(s) not begun cancelled" if decided.get("cancelled") else ""
    return f"{decided['sop_id']} v{decided['version']} {words} by {decided['reviewer']}{after}{cancelled}"
