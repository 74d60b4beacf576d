"""Scheduled SOP reviews against a real Prefect server: the daily run opens each due review once, the review run
waits for the SOP's review owner with its packet, and keep, revise and retire each take effect."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone

import pytest
from sqlalchemy import delete, select

from sopflow.cli.approvals import send_answer
from sopflow.store.models import Review
from tests.support import (add_lead, answer, environment, finished, flow_state, form_description, run_cli, sop_run,
                           sopflow, start_deployment, wait_for)

pytestmark = pytest.mark.server
RETIRED = "email-then-approval"  # a test-only SOP every new lead starts; its owner role is manager (Maria Lopez)


def review_runs(up) -> list[dict]:
    with up.api() as api:
        return api.post("/flow_runs/filter", json={"flows": {"name": {"any_": ["sopflow-review"]}}}).json()


def open_reviews(up) -> dict[str, Review]:
    with up.store() as session:
        return {r.sop_id: r for r in session.scalars(select(Review).where(Review.state == "open"))}


def decide(up, sop_id: str, pause_key: str, answer_: dict) -> str:
    """Answer the SOP's open review as the UI's form does, once its run waits under `pause_key`; the run's id."""
    flow_run_id = open_reviews(up)[sop_id].flow_run_id
    form_description(up, flow_run_id, pause_key)
    wait_for(lambda: flow_state(up, flow_run_id) == "PAUSED", "the review run to be suspended")
    with environment(up.env):
        send_answer(flow_run_id, answer_)
    return flow_run_id


def decided(up, sop_id: str) -> Review:
    def probe() -> Review | None:
        with up.store() as session:
            return session.scalars(select(Review).where(Review.sop_id == sop_id, Review.state == "done")).first()

    return wait_for(probe, f"the review of {sop_id} to be decided")


@pytest.fixture(scope="module")
def reviews_opened(sopflow_up) -> Iterator[dict[str, Review]]:
    """Two daily review runs on the same day, one after the other; the reviews they opened. Undone afterwards,
    so other tests see every SOP active."""
    try:
        for _ in range(2):
            daily = start_deployment(sopflow_up, "sopflow-reviews-due/daily")
            wait_for(lambda: flow_state(sopflow_up, daily) == "COMPLETED", "the daily review run to complete")
        yield open_reviews(sopflow_up)
    finally:
        with sopflow_up.store() as session, session.begin():
            session.execute(delete(Review))


def test_the_daily_run_opens_each_due_review_once(sopflow_up, reviews_opened):
    catalogue = {row["sop"]: row for row in json.loads(sopflow(sopflow_up.env, "sops", "--json"))}
    assert set(reviews_opened) == set(catalogue)  # never reviewed: every SOP is due today
    assert {sop_id: row["review_run_id"] for sop_id, row in catalogue.items()} == {
        sop_id: review.flow_run_id for sop_id, review in reviews_opened.items()}
    today = datetime.now(timezone.utc).date()
    assert {r.due_on for r in reviews_opened.values()} == {today}
    names = {f"{r.sop_id}-review-{r.id}" for r in reviews_opened.values()}
    # a run takes its name when it starts: wait for every review run to have begun
    runs = wait_for(lambda: (found := review_runs(sopflow_up)) and {r["name"] for r in found} == names and found,
                    "every review run to start under its name")
    assert sorted(r["id"] for r in runs) == sorted(r.flow_run_id for r in reviews_opened.values())  # one each


def test_a_review_waits_for_its_owner_with_the_packet_then_retire_stops_new_runs(sopflow_up, reviews_opened):
    before = add_lead(sopflow_up)  # its run of the SOP begins before the retirement, so it finishes
    wait_for(lambda: (r := sop_run(sopflow_up, before["id"], RETIRED)) is not None and r.state == "waiting",
             "the earlier lead's run to wait for the manager")
    run_id = reviews_opened[RETIRED].flow_run_id
    description = form_description(sopflow_up, run_id, "review-0")
    assert "**Who may answer (manager):** Maria Lopez" in description
    assert f"# Review of Email first, then a manager's approval ({RETIRED}, version 2)" in description
    assert "## Where runs wait longest" in description and "## Automation candidates" in description
    with sopflow_up.api() as api:
        artifacts = api.post("/artifacts/filter", json={"artifacts": {"key": {"any_": [f"review-{RETIRED}"]}}}).json()
    assert [a["type"] for a in artifacts] == ["markdown"] and f"({RETIRED}, version 2)" in artifacts[0]["data"]

    decide(sopflow_up, RETIRED, "review-0", {"outcome": "retire", "reviewer": "Alex Kim", "notes": ""})
    again = form_description(sopflow_up, run_id, "review-1")  # asked again: Alex Kim is not a manager
    assert "Previous answer not accepted: 'Alex Kim' is not on the manager roster (Maria Lopez)" in again
    assert RETIRED in open_reviews(sopflow_up)
    decide(sopflow_up, RETIRED, "review-1", {"outcome": "retire", "reviewer": "maria lopez",
                                             "notes": "replaced by lead-qualification"})
    review = decided(sopflow_up, RETIRED)
    assert (review.outcome, review.reviewer, review.notes, review.sop_version) == (
        "retire", "Maria Lopez", "replaced by lead-qualification", 2)
    assert wait_for(lambda: flow_state(sopflow_up, run_id) == "COMPLETED", "the review run to complete")
    with sopflow_up.api() as api:  # what the run page shows as its state message
        assert api.get(f"/flow_runs/{run_id}").json()["state"]["message"] == f"{RETIRED} v2 retired by Maria Lopez"

    after = add_lead(sopflow_up)
    assert wait_for(lambda: sop_run(sopflow_up, after["id"]), "the new lead's qualification run") is not None
    assert sop_run(sopflow_up, after["id"], RETIRED) is None  # a retired SOP starts no new run
    answer(sopflow_up, before["id"], "manager_check", "Maria Lopez")
    assert finished(sopflow_up, before["id"], RETIRED).outcome == "completed"  # running ones finish
    row = next(r for r in json.loads(sopflow(sopflow_up.env, "sops", "--json")) if r["sop"] == RETIRED)
    assert (row["review_status"], row["next_review"]) == ("retired", None)
    history = json.loads(sopflow(sopflow_up.env, "history", RETIRED, "--json"))
    assert [r["outcome"] for v in history for r in v["reviews"]] == ["retire"]


def test_keep_moves_the_due_date_and_revise_marks_the_sop(sopflow_up, reviews_opened):
    kept_run = reviews_opened["custom-task"].flow_run_id
    wait_for(lambda: flow_state(sopflow_up, kept_run) == "PAUSED", "the review run to be suspended")
    said = sopflow(sopflow_up.env, "review", "custom-task", "keep", "--reviewer", "dana reyes")
    assert said == f"custom-task v1 kept by dana reyes; review run {kept_run} records it\n"
    decide(sopflow_up, "prospecting", "review-0", {"outcome": "revise", "reviewer": "Dana Reyes", "notes": ""})
    again = form_description(sopflow_up, reviews_opened["prospecting"].flow_run_id, "review-1")
    assert "revise needs notes that say what must change" in again
    decide(sopflow_up, "prospecting", "review-1", {"outcome": "revise", "reviewer": "Dana Reyes",
                                                   "notes": "the first touch email is too long"})
    kept, revised = decided(sopflow_up, "custom-task"), decided(sopflow_up, "prospecting")
    assert (kept.outcome, revised.outcome, revised.notes) == ("keep", "revise", "the first touch email is too long")
    rows = {r["sop"]: r for r in json.loads(sopflow(sopflow_up.env, "sops", "--json"))}
    assert rows["custom-task"]["next_review"] == (kept.decided_at.date() + timedelta(weeks=4)).isoformat()
    assert date.fromisoformat(rows["custom-task"]["next_review"]) > datetime.now(timezone.utc).date()
    assert (rows["custom-task"]["review_status"], rows["prospecting"]["review_status"]) == ("active", "needs_revision")
    warned = run_cli(sopflow_up.env, "validate").stderr
    assert "prospecting.yaml:21: review: warning: the review of" in warned
    assert "sent this version back for revision; change it and raise its version" in warned
