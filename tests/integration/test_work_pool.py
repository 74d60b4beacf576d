"""Production's layout: Prefect's server and the store on PostgreSQL, the SOP flows deployed into a process work
pool, two workers running them. A run suspended under one worker resumes under the other, and sends nothing twice."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select

from sopflow.settings import PROJECT_ROOT
from sopflow.store.models import OutboxEmail
from tests.postgres import new_database
from tests.server_fixture import FIXTURE_SOPS, Sopflow, start_sopflow_up
from tests.support import add_lead, answer, finished, flow_state, sop_run, taken_at, wait_for

pytestmark = [pytest.mark.server, pytest.mark.postgres]
POOL = "sales"
SOP = "email-then-approval"


@pytest.fixture(scope="module")
def pooled_up(tmp_path_factory) -> Iterator[Sopflow]:
    """`sopflow up --pool sales` on PostgreSQL: the intake and dispatcher here, no flow run executed here."""
    root = tmp_path_factory.mktemp("pooled-up")
    (root / "sops").mkdir()
    shutil.copy(FIXTURE_SOPS / f"{SOP}.yaml", root / "sops")
    shutil.copytree(PROJECT_ROOT / "sop_definitions" / "templates", root / "sops" / "templates")
    with new_database("prefect_pool") as prefect, new_database("sopflow_pool") as store, \
            start_sopflow_up(root, root / "sops", {
                "SOPFLOW_PREFECT_DATABASE_URL": prefect,
                "SOPFLOW_DATABASE_URL": store.replace("postgresql://", "postgresql+psycopg://"),
            }, "--pool", POOL) as up:
        yield up


@contextmanager
def worker(up: Sopflow, name: str, *command: str, settings: dict[str, str] | None = None) -> Iterator[Path]:
    """A worker process on the pool, as an operator starts one on another machine; yields its log; Ctrl-C on exit."""
    log = up.home.parent / f"{name}.log"
    env = {**os.environ, **up.env, "PREFECT_API_AUTH_STRING": up.login, "PREFECT_WORKER_QUERY_SECONDS": "2",
           **(settings or {})}
    with open(log, "ab") as out:
        process = subprocess.Popen([*command, "--pool", POOL, "--name", name], env=env, stdout=out,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: process.poll() is not None or _online(up, name), f"worker {name} to poll the pool")
        assert process.poll() is None, f"worker {name} exited:\n{log.read_text()}"
        yield log
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _online(up: Sopflow, name: str) -> bool:
    with up.api() as api:
        answer = api.post(f"/work_pools/{POOL}/workers/filter", json={})
    return answer.status_code == 200 and any(w["name"] == name and w["status"] == "ONLINE" for w in answer.json())


def stock_worker(up: Sopflow, name: str):
    return worker(up, name, sys.executable, "-m", "prefect", "worker", "start")


def warm_worker(up: Sopflow, name: str, settings: dict[str, str] | None = None):
    return worker(up, name, sys.executable, "-m", "sopflow.cli", "worker", settings=settings)


def submitted_by(up: Sopflow, flow_run_id: str) -> list[str]:
    """The workers that tried to take this flow run, in order, from the run's own log (as its page in the Prefect
    UI shows)."""
    with up.api() as api:
        logs = api.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200,
                                              "sort": "TIMESTAMP_ASC"}).json()
    return [log["message"].split("'")[1] for log in logs if "submitting flow run" in log["message"]]


def emails_of(up: Sopflow, lead_id: str) -> int:
    """The lead's emails; each links to the intake of `sopflow up`, which the workers learn from its home."""
    run = sop_run(up, lead_id, SOP)
    with up.store() as session:
        emails = session.scalars(select(OutboxEmail).where(OutboxEmail.sop_run_id == run.id)).all()
    assert all(e.headers["List-Unsubscribe"].startswith(f"<{up.intake_url}/unsubscribe?") for e in emails), emails
    return len(emails)


def test_the_flows_are_deployed_into_the_pool_and_nothing_runs_without_a_worker(pooled_up):
    up = pooled_up
    with up.api() as api:
        pool = api.get(f"/work_pools/{POOL}").json()
        deployments = api.post("/deployments/filter", json={"limit": 50}).json()
    assert pool["type"] == "process"
    assert {d["name"] for d in deployments} >= {SOP, "daily", "weekly", "monthly", "review"}
    assert {d["work_pool_name"] for d in deployments} == {POOL}
    assert all(d["entrypoint"].startswith("flows.") for d in deployments)  # loaded from the installed package
    lead = add_lead(up)
    run = wait_for(lambda: (r := sop_run(up, lead["id"], SOP)) and r.flow_run_id and r, "the flow run to be created")
    assert flow_state(up, run.flow_run_id) == "SCHEDULED"  # no worker yet: it waits in the pool
    with stock_worker(up, "first"):
        wait_for(lambda: flow_state(up, run.flow_run_id) == "PAUSED", "the run to reach its approval")
    assert submitted_by(up, run.flow_run_id) == ["first"]


def test_a_run_suspended_under_one_worker_resumes_under_the_other_and_sends_nothing_twice(pooled_up):
    up = pooled_up
    with stock_worker(up, "worker-a"):  # `prefect worker start --pool sales`
        leads = [add_lead(up) for _ in range(3)]
        runs = [wait_for(lambda lead=lead: (r := sop_run(up, lead["id"], SOP)) and r.flow_run_id and r,
                         "the flow run to be created") for lead in leads]
        for run in runs:
            wait_for(lambda run=run: flow_state(up, run.flow_run_id) == "PAUSED", "the run to reach its approval")
    assert [submitted_by(up, run.flow_run_id) for run in runs] == [["worker-a"]] * 3
    assert [emails_of(up, lead["id"]) for lead in leads] == [1, 1, 1]

    with warm_worker(up, "worker-b"):  # worker-a is gone: sopflow's warm worker alone runs the pool
        for lead in leads:
            answer(up, lead["id"], "manager_check", "Maria Lopez")
        for lead, run in zip(leads, runs):
            assert finished(up, lead["id"], SOP).outcome == "completed"
            wait_for(lambda run=run: flow_state(up, run.flow_run_id) == "COMPLETED", "Prefect to show it completed")
        assert [submitted_by(up, run.flow_run_id) for run in runs] == [["worker-a", "worker-b"]] * 3
        with stock_worker(up, "worker-c"):  # and now two workers side by side
            more = [add_lead(up) for _ in range(4)]
            for lead in more:
                answer(up, lead["id"], "manager_check", "Maria Lopez", "--reject")
                assert finished(up, lead["id"], SOP).outcome == "rejected at manager_check"
    assert [emails_of(up, lead["id"]) for lead in leads + more] == [1] * 7  # resumed elsewhere, not sent again
    # Side by side, both workers may try the same run: the server lets one have it (the other's try is aborted,
    # though logged as "submitting"); the emails above, once each, show nothing was done twice.
    taken = [submitted_by(up, sop_run(up, lead["id"], SOP).flow_run_id) for lead in more]
    assert all(len(by) >= 2 and set(by) <= {"worker-b", "worker-c"} for by in taken), taken


def test_the_warm_worker_takes_the_next_waiting_run_as_soon_as_one_ends(pooled_up):
    """One slot and a poll an hour: three runs waiting in the pool all start, each when the one before ends."""
    up = pooled_up
    leads = [add_lead(up) for _ in range(3)]
    runs = [wait_for(lambda lead=lead: (r := sop_run(up, lead["id"], SOP)) and r.flow_run_id and r,
                     "the flow run to be created") for lead in leads]
    with warm_worker(up, "one-slot", {"PREFECT_WORKER_QUERY_SECONDS": "3600", "SOPFLOW_FLOW_RUN_SLOTS": "1"}):
        for run in runs:
            wait_for(lambda run=run: flow_state(up, run.flow_run_id) == "PAUSED", "the run to reach its approval",
                     timeout=120)
    assert [submitted_by(up, run.flow_run_id) for run in runs] == [["one-slot"]] * 3


def test_an_answered_run_takes_the_warm_workers_free_slot_before_runs_that_waited_longer(pooled_up):
    """Two new leads' runs wait in the pool, scheduled before the answer: the answered run is taken first."""
    up = pooled_up
    answered = add_lead(up)
    run = wait_for(lambda: (r := sop_run(up, answered["id"], SOP)) and r.flow_run_id and r, "the flow run")
    with warm_worker(up, "to-the-pause"):
        wait_for(lambda: flow_state(up, run.flow_run_id) == "PAUSED", "the run to reach its approval", timeout=120)
    newer = [wait_for(lambda lead=lead: (r := sop_run(up, lead["id"], SOP)) and r.flow_run_id and r,
                      "the flow run to be created") for lead in (add_lead(up), add_lead(up))]
    answered_at = time.time()
    answer(up, answered["id"], "manager_check", "Maria Lopez")
    wait_for(lambda: flow_state(up, run.flow_run_id) == "SCHEDULED", "the answered run to be scheduled again")
    with warm_worker(up, "one-slot-again", {"PREFECT_WORKER_QUERY_SECONDS": "3600", "SOPFLOW_FLOW_RUN_SLOTS": "1"}):
        finished(up, answered["id"], SOP)
        for other in newer:
            wait_for(lambda other=other: flow_state(up, other.flow_run_id) == "PAUSED", "the run to reach its approval",
                     timeout=120)
    assert taken_at(up, run.flow_run_id, answered_at) < min(taken_at(up, other.flow_run_id) for other in newer)
