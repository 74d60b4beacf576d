"""A run's history in the Prefect UI reads like its SOP, against a real Prefect server: one task run per step it
took, named by the step id, in plan order, even across resumes; skips and decisions in the states' names and
messages; what the suspended run waits for in its state; one summary table per run."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.support import (add_lead, answer, finished, flow_state, remove_lead, sop_run, task_runs, wait_for,
                           waiting_ask)

pytestmark = pytest.mark.server


@pytest.fixture
def lead(prefect_db_up) -> Iterator[dict]:
    """This test's lead; taken out of the shared store afterwards, with all its runs stored."""
    added = add_lead(prefect_db_up)
    try:
        yield added
    finally:
        remove_lead(prefect_db_up, added["id"])


def flow_run(up, flow_run_id: str) -> dict:
    with up.api() as api:
        return api.get(f"/flow_runs/{flow_run_id}").json()


def summaries(up, flow_run_id: str) -> list[dict]:
    """The flow run's table artifacts."""
    with up.api() as api:
        return api.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [flow_run_id]},
                                                                 "type": {"any_": ["table"]}}}).json()


def summary_rows(up, flow_run_id: str, last_step: str) -> list[tuple]:
    """The summary's (step, status, who) rows, once the run's only table has a row for `last_step`."""
    def published() -> list[dict] | None:
        found = summaries(up, flow_run_id)
        assert len(found) <= 1, found
        return found and (rows := json.loads(found[0]["data"]))[-1]["step"] == last_step and rows

    return wait_for(published, f"the run summary to show {last_step}")


def test_a_run_resumed_twice_shows_each_step_once_named_by_the_sop(prefect_db_up, lead):
    up = prefect_db_up
    flow_run_id = wait_for(lambda: waiting_ask(up, lead["id"], "rep_qualification"), "the rep's ask")["run_id"]
    wait_for(lambda: flow_state(up, flow_run_id) == "PAUSED", "the run to be suspended")
    assert flow_run(up, flow_run_id)["state"]["message"].startswith("waiting for rep: Alex Kim or Priya Shah, due ")
    rows = summary_rows(up, flow_run_id, "rep_qualification")
    assert [(r["step"], r["status"], r["who"]) for r in rows] == [
        ("score_lead", "completed", "sopflow"), ("send_to_nurture", "skipped", "sopflow"),
        ("rep_qualification", "waiting", "rep: Alex Kim or Priya Shah")]

    answer(up, lead["id"], "rep_qualification", "Alex Kim", "--notes", "Budget agreed with their CFO")
    answer(up, lead["id"], "manager_approval", "Maria Lopez", "--reject", "--notes", "Not this quarter")
    finished(up, lead["id"])
    wait_for(lambda: flow_state(up, flow_run_id) == "COMPLETED", "Prefect to show the run completed")

    steps = ["score_lead", "send_to_nurture", "rep_qualification", "manager_approval", "disqualify"]
    shown = task_runs(up, flow_run_id, ended=len(steps))
    assert [t["name"] for t in shown] == steps  # each once, in plan order: the resumes did not show them again
    state = {t["name"]: (t["state"]["name"], t["state"]["message"]) for t in shown}
    assert state["score_lead"][0] == state["disqualify"][0] == "Completed"
    assert state["send_to_nurture"] == ("Skipped", "condition not met: lead.score < 50")
    assert state["rep_qualification"][0] == "Approved"
    assert state["rep_qualification"][1].startswith("approve by Alex Kim at ")
    assert state["manager_approval"][0] == "Rejected"
    assert state["manager_approval"][1].startswith("reject by Maria Lopez at ")

    rows = summary_rows(up, flow_run_id, "disqualify")
    assert [(r["step"], r["status"], r["who"], r["outcome"]) for r in rows] == [
        ("score_lead", "completed", "sopflow", rows[0]["outcome"]),
        ("send_to_nurture", "skipped", "sopflow", "skipped: condition not met: lead.score < 50"),
        ("rep_qualification", "completed", "Alex Kim", "approve"),
        ("manager_approval", "completed", "Maria Lopez", "reject"),
        ("disqualify", "completed", "sopflow", "status → disqualified")]
    assert rows[0]["outcome"].startswith("scored 90 (grade A") and all(r["when"].endswith(" UTC") for r in rows)
    [table] = summaries(up, flow_run_id)
    assert sop_run(up, lead["id"]).summary_artifact_id == table["id"]  # kept, so each resume updates it directly
    assert table["key"] is None and table["description"] == (
        f"Run summary: Lead qualification and needs assessment for lead {lead['id']}")
    assert "CFO" not in table["data"] and "quarter" not in table["data"] and "@" not in table["data"]
