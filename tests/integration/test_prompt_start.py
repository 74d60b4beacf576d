"""Runs start, and answered runs go on, when something happens, not at the runner's next poll.

This `sopflow up` polls Prefect for runs only once an hour (PREFECT_RUNNER_POLL_FREQUENCY) and runs one flow
run at a time: every run below starts because the dispatcher woke the runner after creating it, because the run
before it ended and freed the slot, or because `sopflow approve` nudged the dispatcher. A freed slot goes to an
answered run before new leads' runs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from sopflow.services.nudge import ANSWERED, send_nudge
from tests.server_fixture import Sopflow, start_one_sop_up
from tests.support import flow_state, sop_run, sopflow, taken_at, wait_for

pytestmark = pytest.mark.server

ASK_SOP = """\
id: quick-ask
name: Quick ask
version: 1
owner: Dana Reyes
objective: {statement: Every lead asked about within the day, metric: leads asked, baseline: 0, target: 1, deadline: 2030-01-01}
roles: {ops: [Dana Reyes], rep: [Alex Kim]}
trigger: {event: new_lead}
review: {every: 12w, owner: ops}
steps:
  - {id: check, kind: task, owner: ops, function: held}
  - {id: start_working, kind: update_lead, owner: ops, status: working}
  - {id: rep_check, kind: approval, owner: rep, prompt: "Worth a call?"}
  - {id: mark_qualified, kind: update_lead, owner: rep, status: qualified}
"""


@pytest.fixture(scope="module")
def hourly_up(tmp_path_factory) -> Iterator[Sopflow]:
    root = tmp_path_factory.mktemp("hourly-up")
    (root / "hang").mkdir()  # where a "Held Inc" lead's run says it holds the slot, and is told to let go
    settings = {"PREFECT_RUNNER_POLL_FREQUENCY": "3600", "SOPFLOW_FLOW_RUN_SLOTS": "1", "HANG_DIR": str(root / "hang"),
                "SOPFLOW_TASKS": "held=tests.registered_tasks:held_until_released"}
    with start_one_sop_up(root, ASK_SOP, settings) as up:
        yield up


def post_leads(up: Sopflow, count: int, tag: str, **fields: str) -> list[str]:
    with httpx.Client(base_url=up.intake_url, headers={"Authorization": f"Bearer {up.token}"}) as intake:
        return [intake.post("/leads", json={"email": f"{tag}-{n}@prompt.example", **fields}).json()["id"]
                for n in range(count)]


def flow_run_of(up: Sopflow, lead_id: str) -> str:
    return wait_for(lambda: (run := sop_run(up, lead_id, "quick-ask")) and run.flow_run_id, "the lead's flow run")


def paused_run(up: Sopflow, lead_id: str) -> str | None:
    run = sop_run(up, lead_id, "quick-ask")
    return run.flow_run_id if run and run.flow_run_id and flow_state(up, run.flow_run_id) == "PAUSED" else None


def test_leads_start_one_after_another_though_the_runner_polls_hourly(hourly_up):
    lead_ids = post_leads(hourly_up, 4, "burst")
    paused = wait_for(lambda: all(runs := [paused_run(hourly_up, lead) for lead in lead_ids]) and runs,
                      "all four runs to reach the rep's ask, one slot, no poll", timeout=120)
    assert len(set(paused)) == 4
    assert "Ctrl-C stops everything" in hourly_up.log.read_text()  # the hourly runner was not restarted meanwhile


def test_an_answer_moves_its_run_on_though_the_runner_polls_hourly(hourly_up):
    lead_id = post_leads(hourly_up, 1, "answer")[0]
    flow_run_id = wait_for(lambda: paused_run(hourly_up, lead_id), "the rep's ask")
    sopflow(hourly_up.env, "approve", flow_run_id, "--approver", "Alex Kim")
    wait_for(lambda: flow_state(hourly_up, flow_run_id) == "COMPLETED", "the answered run to finish", timeout=60)
    assert sop_run(hourly_up, lead_id, "quick-ask").state == "completed"


def test_a_freed_slot_goes_to_an_answered_run_before_new_leads_runs_that_waited_longer(hourly_up):
    up, hang = hourly_up, hourly_up.home.parent / "hang"
    answered_lead = post_leads(up, 1, "answered")[0]
    answered = wait_for(lambda: paused_run(up, answered_lead), "the rep's ask")
    held = post_leads(up, 1, "held", company="Held Inc")[0]  # its run holds the only slot
    wait_for(lambda: (hang / f"{held}.held").exists(), "the held run to take the slot")
    newer = [flow_run_of(up, lead_id) for lead_id in post_leads(up, 2, "newer")]
    assert [flow_state(up, run) for run in newer] == ["SCHEDULED"] * 2  # waiting for the slot

    answered_at = time.time()
    sopflow(up.env, "approve", answered, "--approver", "Alex Kim")
    wait_for(lambda: flow_state(up, answered) == "SCHEDULED", "the answered run to be scheduled again")
    (hang / f"{held}.go").touch()

    wait_for(lambda: flow_state(up, answered) == "COMPLETED", "the answered run to finish", timeout=60)
    for run in newer:
        wait_for(lambda run=run: flow_state(up, run) == "PAUSED", "the new lead's run to reach the rep's ask", timeout=60)
    assert taken_at(up, answered, answered_at) < min(taken_at(up, run) for run in newer)


def test_stray_datagrams_on_the_dispatcher_port_wake_nothing_that_breaks(hourly_up):
    port = int((hourly_up.home / "dispatcher-port").read_text())
    for garbage in (ANSWERED, b"", b"\xff" * 64, b"x" * 60000):
        send_nudge(port, garbage)
    lead_id = post_leads(hourly_up, 1, "after-garbage")[0]
    wait_for(lambda: paused_run(hourly_up, lead_id), "a lead posted after the garbage to reach its ask", timeout=60)



def test_the_answer_form_is_saved_before_the_run_shows_paused(hourly_up):
    """So an answer sent the instant a run pauses is checked against its form, not refused for want of one."""
    lead_id = post_leads(hourly_up, 1, "instant")[0]
    flow_run_id = wait_for(lambda: paused_run(hourly_up, lead_id), "the rep's ask")
    with hourly_up.api() as api:
        states = api.get("/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
        paused = next(s for s in states if s["type"] == "PAUSED")
        schema_key = paused["state_details"]["run_input_keyset"]["schema"]
        inputs = api.post(f"/flow_runs/{flow_run_id}/input/filter", json={"prefix": schema_key}).json()
    saved = next(i for i in inputs if i["key"] == schema_key)
    assert datetime.fromisoformat(saved["created"]) <= datetime.fromisoformat(paused["timestamp"])
