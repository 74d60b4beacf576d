"""Helpers shared by the tests: polling, and running the real `sopflow` CLI."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime
from collections.abc import Callable, Iterator
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from typing import Any, TypeVar

import httpx
from sqlalchemy import delete, select

from sopflow.cli import main
from sopflow.store.models import (Approval, ApprovalLink, ApprovalNotice, AuditFinding, Engagement, Feedback, Lead,
                                  OutboxEmail, SlaAction, SopRun, StepRecord, Wait)

T = TypeVar("T")


def wait_for(probe: Callable[[], T], what: str, timeout: float = 180.0, every: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `sopflow ARGS` in a fresh process, as a user or a script would."""
    done = subprocess.run(
        [sys.executable, "-m", "sopflow.cli", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"sopflow {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(env, *args, "--json").stdout)


@contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in saved.items():
            os.environ.pop(name, None) if value is None else os.environ.__setitem__(name, value)


def sopflow(env: dict[str, str], *args: str, codes: tuple[int, ...] = (0,)) -> str:
    """Run `sopflow ARGS` in this process (the same code as the command, without an interpreter start)."""
    out, err = io.StringIO(), io.StringIO()
    with environment(env), redirect_stdout(out), redirect_stderr(err):
        code = main(list(args))
    if code not in codes:
        raise AssertionError(f"sopflow {' '.join(args)} exited {code}:\n{out.getvalue()}\n{err.getvalue()}")
    return out.getvalue()


# Driving a running `sopflow up` (the `sopflow_up` fixture) as its users do.

def add_lead(up, **fields) -> dict:
    fields = {"email": f"{uuid.uuid4().hex[:8]}@example.com", "name": "Jane Doe", "company": "Acme",
              "title": "VP Sales", "employees": "500", "industry": "software", "source": "website", **fields}
    args = []
    for key, value in fields.items():  # True is a flag: do_not_contact=True gives --do-not-contact
        args += [f"--{key.replace('_', '-')}"] + ([] if value is True else [value])
    return json.loads(sopflow(up.env, "lead", "add", *args, "--json"))


def sop_run(up, lead_id: str, sop: str = "lead-qualification") -> SopRun | None:
    with up.store() as session:
        return session.scalar(select(SopRun).where(SopRun.lead_id == lead_id, SopRun.sop_id == sop))


def waiting_ask(up, lead_id: str, step: str, ask: int = 0) -> dict | None:
    """The open ask, read from the store (cheap to poll; `sopflow approvals` shows the same rows)."""
    with up.store() as session:
        found = session.execute(
            select(Approval, SopRun).join(SopRun, SopRun.id == Approval.sop_run_id).where(
                SopRun.lead_id == lead_id, Approval.step_id == step, Approval.ask == ask,
                Approval.answered_at.is_(None))
        ).first()
    return {"run_id": found[1].flow_run_id, "sop": found[1].sop_id, "ask": ask} if found else None


def answer(up, lead_id: str, step: str, approver: str, *extra: str, ask: int = 0, code: int = 0) -> None:
    """`sopflow approve` the open ask; it must exit `code` (OFF_ROSTER for an approver off the step's roster)."""
    row = wait_for(lambda: waiting_ask(up, lead_id, step, ask), f"{step} ask {ask} to wait for an answer")
    wait_for(lambda: flow_state(up, row["run_id"]) == "PAUSED", "the flow run to be suspended")
    sopflow(up.env, "approve", row["run_id"], "--approver", approver, *extra, codes=(code,))


def flow_state(up, flow_run_id: str) -> str:
    """The flow run's state type; "" while Prefect's busy SQLite database keeps it from answering in time."""
    try:
        with up.api() as api:
            return api.get(f"/flow_runs/{flow_run_id}").json()["state"]["type"]
    except httpx.TimeoutException:
        return ""


def taken_at(up, flow_run_id: str, after: float = 0.0) -> float:
    """When a runner or worker took the flow run (its first Pending state) at or after `after` (epoch seconds)."""
    def pending() -> float | None:
        with up.api() as api:
            states = api.get("/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
        times = [datetime.fromisoformat(s["timestamp"]).timestamp() for s in states if s["type"] == "PENDING"]
        return min((t for t in times if t >= after), default=None)
    return wait_for(pending, f"flow run {flow_run_id} to be taken")


def form_description(up, flow_run_id: str, pause_key: str) -> str:
    """What the UI's resume form shows above the fields, once the run has suspended."""
    url = f"/flow_runs/{flow_run_id}/input/suspended-{pause_key}-description"
    with up.api() as api:
        return wait_for(lambda: (r := api.get(url)).status_code == 200 and r.json(), "the form's description")


def finished(up, lead_id: str, sop: str = "lead-qualification") -> SopRun:
    return wait_for(lambda: (r := sop_run(up, lead_id, sop)) is not None and r.state == "completed" and r,
                    f"the {sop} run to complete")


def step_records(up, run_id: str) -> dict[str, StepRecord]:
    with up.store() as session:
        rows = session.scalars(select(StepRecord).where(StepRecord.sop_run_id == run_id).order_by(StepRecord.id))
        return {r.step_id: r for r in rows}


def qualify(up, lead_id: str, rep: str = "Alex Kim") -> None:
    """Take a lead through lead-qualification's two approvals: the rep's, then the manager's."""
    answer(up, lead_id, "rep_qualification", rep)
    answer(up, lead_id, "manager_approval", "Maria Lopez")


FINAL = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")  # Prefect's state types of a run that has ended


def task_runs(up, flow_run_id: str, ended: int) -> list[dict]:
    """The flow run's task runs in the order they began, once at least `ended` of them have ended (Prefect records
    task runs from their events, a moment after the flow run moves on)."""
    def found() -> list[dict] | None:
        with up.api() as api:
            rows = api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}},
                                                       "sort": "EXPECTED_START_TIME_ASC", "limit": 200}).json()
        return rows if sum(1 for row in rows if row["state"] and row["state"]["type"] in FINAL) >= ended else None

    return wait_for(found, f"{ended} task runs of flow run {flow_run_id} to end")


def remove_lead(up, lead_id: str) -> None:
    """Take a test's lead, its runs and all they stored out of the shared store, once none of its flow runs is
    under way (each ended or suspended), so later tests and audits do not see them."""
    def quiet() -> bool:
        with up.store() as session:
            flow_runs = list(session.scalars(select(SopRun.flow_run_id).where(SopRun.lead_id == lead_id)))
        return all(flow_run and flow_state(up, flow_run) in (*FINAL, "PAUSED") for flow_run in flow_runs)

    wait_for(quiet, f"the runs of lead {lead_id} to end or wait")
    runs = select(SopRun.id).where(SopRun.lead_id == lead_id)
    asks = select(Approval.id).where(Approval.sop_run_id.in_(runs))
    with up.store() as session, session.begin():
        for by_ask in (ApprovalNotice, ApprovalLink, SlaAction):
            session.execute(delete(by_ask).where(by_ask.approval_id.in_(asks)))
        for by_run in (StepRecord, Approval, OutboxEmail, Wait, Feedback, AuditFinding):
            session.execute(delete(by_run).where(by_run.sop_run_id.in_(runs)))
        for by_lead in (Engagement, SopRun):
            session.execute(delete(by_lead).where(by_lead.lead_id == lead_id))
        session.execute(delete(Lead).where(Lead.id == lead_id))


def start_deployment(up, name: str, parameters: dict | None = None) -> str:
    """Start a flow run of deployment `flow/deployment` as the UI's Run button does; its id.

    Prefect's own client retries when its SQLite database is busy (a 503, or no answer in time): so do we.
    A retry may start a second run: the flows started so are idempotent.
    """
    def attempt() -> httpx.Response | None:
        try:
            with up.api() as api:
                found = api.get(f"/deployments/name/{name}")
                assert found.status_code == 200, found.text
                created = api.post(f"/deployments/{found.json()['id']}/create_flow_run", json={"parameters": parameters or {}})
        except httpx.TimeoutException:
            return None
        return None if created.status_code == 503 else created

    created = wait_for(attempt, "Prefect to take the run")
    assert created.status_code == 201, created.text
    return created.json()["id"]
