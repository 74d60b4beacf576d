"""SOP reviews: a daily run opens the due ones, one review run per (SOP, due date) waits for the owner's decision."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.deployments import run_deployment
from prefect.flow_runs import suspend_flow_run
from prefect.states import Completed, Failed

from sopflow.catalog import load_all
from sopflow.logs import redact_everywhere
from sopflow.store import reviews
from sopflow.store.db import transaction
from sopflow.versioning import record_loaded
from tasks.review import ReviewForm, decide, decision_words, open_review, review_description

REVIEW_DEPLOYMENT = "sopflow-review/review"


@flow(name="sopflow-reviews-due", persist_result=False)
def start_due_reviews() -> dict[str, Any]:
    """Open a review of every SOP due today (UTC) and start one review run per open review, exactly once.

    A review is one row per (SOP, due date) and its run is created under an idempotency key per
    review, so a second run the same day, or one after a crash between the two, starts nothing twice.
    """
    redact_everywhere()
    logger = get_run_logger()
    sops = load_all()
    with transaction() as session:
        record_loaded(session, list(sops.values()))  # the review reads the version it reviews from the store
        opened = [review.sop_id for review in reviews.claim_due_reviews(session, sops, datetime.now(timezone.utc).date())]
        to_start = [(review.id, review.sop_id) for review in reviews.without_run(session)]
    started = []
    for review_id, sop_id in to_start:
        flow_run = run_deployment(REVIEW_DEPLOYMENT, parameters={"review_id": review_id, "sop_id": sop_id}, timeout=0,
                                  idempotency_key=f"sopflow:review:{review_id}", as_subflow=False)
        with transaction() as session:
            reviews.attach_flow_run(session, review_id, str(flow_run.id))
        started.append(sop_id)
    logger.info("Reviews due: %s; review runs started: %s.", ", ".join(opened) or "none", ", ".join(started) or "none")
    return {"opened": opened, "started": started}


@flow(name="sopflow-review", flow_run_name="{sop_id}-review-{review_id}", persist_result=False)
def review_sop(review_id: int, sop_id: str) -> State:
    """Show the SOP's review packet to its review owner and wait for keep, revise or retire from the roster."""
    redact_everywhere()
    opened = open_review(review_id, sop_id)
    if opened["status"] == "unknown":
        get_run_logger().error(opened["reason"])
        return Failed(message=opened["reason"])
    refusals: list[str] = []
    while opened["status"] == "open":  # re-executed from the top on resume: answered keys return their input
        form = ReviewForm.with_initial_data(description=review_description(opened, refusals))
        response = suspend_flow_run(wait_for_input=form, key=f"review-{len(refusals)}")
        decided = decide(review_id, response)
        if decided["status"] != "refused":
            return Completed(message=decision_words(decided), data=decided)
        refusals.append(decided["reason"])
    return Completed(message=decision_words(opened), data=opened)  # decided before this run re-executed
