"""A busy day and a bad hour: 500 leads at once to a running `sopflow up`, and Prefect down while runs wait to start.

These use a `sopflow up` of their own, serving one small SOP, so its burst does not slow the
other tests' runs.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Iterator

import pytest
from prefect import flow
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings
from sqlalchemy import func, select

from deployments.dispatcher import Dispatcher
from deployments.server import free_port
from sopflow.leads import LeadIn
from sopflow.store.db import transaction
from sopflow.store.leads import store_leads
from sopflow.store.models import Lead, SopRun
from tests.server_fixture import Sopflow, start_one_sop_up
from tests.support import wait_for

pytestmark = pytest.mark.server

QUICK_SOP = """\
id: quick-intake
name: Quick intake
version: 1
owner: Dana Reyes
objective: {statement: Every lead worked within the day, metric: leads worked, baseline: 0, target: 1, deadline: 2030-01-01}
roles: {ops: [Dana Reyes]}
trigger: {event: new_lead}
review: {every: 12w, owner: ops}
steps:
  - {id: start_working, kind: update_lead, owner: ops, status: working}
"""


@pytest.fixture(scope="module")
def busy_up(tmp_path_factory) -> Iterator[Sopflow]:
    # One flow run executing at a time: the burst tests the intake and the dispatcher, not how many
    # runs at once Prefect's own SQLite database bears (a single writer; issue 11 measures that).
    with start_one_sop_up(tmp_path_factory.mktemp("busy-up"), QUICK_SOP, {"SOPFLOW_FLOW_RUN_SLOTS": "1"}) as up:
        yield up


async def post_all(up: Sopflow, bodies: list[bytes]) -> list[tuple[int, dict, float]]:
    """POST every body at once, each on its own connection: (status, JSON answer, seconds) per body."""
    port = int(up.intake_url.rsplit(":", 1)[1])

    async def one(body: bytes) -> tuple[int, dict, float]:
        started = time.perf_counter()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /leads HTTP/1.1\r\nHost: intake\r\nAuthorization: Bearer %s\r\nContent-Type: "
                     b"application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                     % (up.token.encode(), len(body), body))
        answer = await reader.read()
        writer.close()
        head, _, content = answer.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(content), time.perf_counter() - started

    return await asyncio.gather(*(one(body) for body in bodies))


@flow(name="parked")
def parked(lead_id: str) -> None:
    """A flow nobody serves: its runs stay scheduled, so the test can count them."""


def test_runs_claimed_while_prefect_is_down_start_once_when_it_is_back(busy_up, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", f"sqlite:///{tmp_path / 'store.db'}")
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PREFECT_API_URL", f"http://127.0.0.1:{free_port()}/api")  # nothing listens there
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    admitted = store_leads([LeadIn(email=f"down-{n}@load.example") for n in range(3)], ["parked"])
    caplog.set_level(logging.WARNING, logger="deployments.dispatcher")
    dispatcher = Dispatcher({"parked"}, poll_seconds=0.2, max_backoff_seconds=0.5)
    dispatcher.start()
    try:
        wait_for(lambda: caplog.text.count("Prefect did not take new SOP runs") >= 3, "three failed rounds", timeout=60)
        with transaction() as session:
            assert session.scalar(select(func.count()).where(SopRun.flow_run_id.is_not(None))) == 0
        assert dispatcher.is_alive()

        with temporary_settings({PREFECT_API_URL: busy_up.api_url, PREFECT_API_AUTH_STRING: busy_up.login}):
            deployment_id = parked.to_deployment(name="parked").apply()
        monkeypatch.setenv("PREFECT_API_URL", busy_up.api_url)  # Prefect is back
        monkeypatch.setenv("PREFECT_API_AUTH_STRING", busy_up.login)

        def started() -> list[str]:
            with transaction() as session:
                ids = list(session.scalars(select(SopRun.flow_run_id).where(SopRun.sop_id == "parked")))
            return ids if all(ids) else []

        flow_run_ids = wait_for(started, "the claimed runs to start once Prefect is back", timeout=60)
    finally:
        dispatcher.stop()
    with busy_up.api() as api:
        runs = api.post("/flow_runs/filter", json={"deployments": {"id": {"any_": [str(deployment_id)]}},
                                                    "sort": "START_TIME_DESC", "limit": 50}).json()
    assert sorted(run["id"] for run in runs) == sorted(flow_run_ids) and len(set(flow_run_ids)) == 3
    assert {run["parameters"]["lead_id"] for run in runs} == {a.lead_id for a in admitted}
    assert "@" not in caplog.text  # the warnings name no lead


def test_500_leads_posted_at_once_are_all_answered_stored_once_and_none_started_twice(busy_up):
    """Runs last in this file: the burst leaves Prefect's database busy for minutes."""
    bodies = [json.dumps({"email": f"burst-{n}@load.example", "company": f"Burst {n}"}).encode() for n in range(500)]
    answers = asyncio.run(post_all(busy_up, bodies))
    assert [status for status, _, _ in answers] == [201] * 500
    lead_ids = {answer["id"] for _, answer, _ in answers}
    assert len(lead_ids) == 500

    with busy_up.store() as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 500
        assert session.scalar(select(func.count()).select_from(SopRun)) == 500

    def started_so_far() -> dict[str, str]:
        with busy_up.store() as session:
            rows = session.execute(select(SopRun.lead_id, SopRun.flow_run_id).where(SopRun.flow_run_id.is_not(None)))
            return dict(rows.tuples().all())

    # The dispatcher keeps at most two flow runs (twice the one slot) waiting in Prefect, so its runner's polls stay
    # small; the rest wait in the store. Let fifty start, then check none started twice and the cap held.
    started = wait_for(lambda: (found := started_so_far()) and len(found) >= 50 and found,
                       "the dispatcher to start claimed runs", timeout=300)
    with busy_up.api() as api:
        in_prefect = api.post("/flow_runs/filter", json={"flows": {"name": {"any_": ["quick-intake"]}},
                                                         "limit": 200}).json()
    leads_in_prefect = [run["parameters"]["lead_id"] for run in in_prefect]
    assert len(leads_in_prefect) == len(set(leads_in_prefect)) >= 50, "a lead has two flow runs"
    assert set(leads_in_prefect) <= lead_ids and len(set(started.values())) == len(started)
    assert sum(run["state"]["type"] == "SCHEDULED" for run in in_prefect) <= 2
    seconds = sorted(took for _, _, took in answers)
    print(f"\n500 simultaneous POST /leads: median {seconds[249] * 1000:.0f} ms, p99 {seconds[494] * 1000:.0f} ms")
