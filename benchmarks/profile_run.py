"""Profile: where one lead's time goes, from the intake to its approval pause, and from an answer to the next pause.

    .venv/bin/python -m benchmarks.profile_run      (from the project root: it starts `sopflow up` as the tests do)

Starts `sopflow up` on the seed SOPs (its own home, ports and SQLite store, as the tests do), POSTs one lead
and answers the rep's approval with `sopflow approve`, then reads the timeline back from Prefect: when the
flow run was created, when its process reported Running, each task run, and when it paused. Also measures,
each in a fresh interpreter, what every flow run's process pays before its first step: Python's start and the
imports of the served flows. Prints each figure in milliseconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

from sopflow.settings import PROJECT_ROOT
from tests.server_fixture import start_sopflow_up
from tests.support import flow_state, sopflow, wait_for

LEAD = {"email": "profile@acme.example", "name": "Pat Profile", "company": "Acme", "title": "VP Sales",
        "employees": 500, "industry": "software", "source": "website"}


def fresh_interpreter_ms(code: str, repeats: int = 3) -> float:
    """The best of `repeats` wall times of `python -c code` in a new process."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
        best = min(best, time.perf_counter() - started)
    return best * 1000


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def timeline(up, flow_run_id: str) -> tuple[list[tuple[datetime, str]], list[dict]]:
    """The flow run's states (time, name), oldest first, and its task runs, by start."""
    with up.api() as api:
        states = api.get("/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
        tasks = api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}}, "limit": 200}).json()
    ordered = sorted((moment(s["timestamp"]), s["name"]) for s in states)
    return ordered, sorted(tasks, key=lambda t: t["start_time"] or t["expected_start_time"])


def report(title: str, since: datetime, states: list[tuple[datetime, str]], tasks: list[dict]) -> None:
    """Print each state and task run after `since`, in ms from `since`."""
    print(title)
    for when, name in states:
        if when >= since:
            print(f"  {(when - since).total_seconds() * 1000:>8.0f} ms  flow run {name}")
    for task in tasks:
        if task["start_time"] and moment(task["start_time"]) >= since:
            start = (moment(task["start_time"]) - since).total_seconds() * 1000
            took = (task["total_run_time"] or 0) * 1000
            print(f"  {start:>8.0f} ms  task {task['name']} ({took:.0f} ms, {task['state']['name']})")


def main() -> None:
    print(f"python start: {fresh_interpreter_ms('pass'):.0f} ms; import prefect: "
          f"{fresh_interpreter_ms('import prefect'):.0f} ms; import the served flows (flows.sops, the tasks): "
          f"{fresh_interpreter_ms('import flows.sops, flows.interpreter'):.0f} ms (each in a new process)")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        sop_dir = root / "sops"
        shutil.copytree(PROJECT_ROOT / "sop_definitions", sop_dir)
        with start_sopflow_up(root, sop_dir, {}) as up:
            headers = {"Authorization": f"Bearer {up.token}"}
            posted = datetime.now().astimezone()
            started = time.perf_counter()
            answer = httpx.post(f"{up.intake_url}/leads", json=LEAD, headers=headers, timeout=30)
            print(f"intake answered {answer.status_code} in {(time.perf_counter() - started) * 1000:.0f} ms")
            lead_id = answer.json()["id"]
            rows = wait_for(lambda: (r := sopflow_json(up, "approvals")) and r, "the rep's approval", timeout=300)
            flow_run_id = rows[0]["run_id"]
            print(f"lead to approval pause: {(datetime.now().astimezone() - posted).total_seconds():.1f} s "
                  f"(polled every 0.5 s)")
            states, tasks = timeline(up, flow_run_id)
            report("timeline from the POST:", posted, states, tasks)
            wait_for(lambda: flow_state(up, flow_run_id) == "PAUSED", "the run to be suspended")
            answered = datetime.now().astimezone()
            sopflow(up.env, "approve", flow_run_id, "--approver", "Alex Kim")
            wait_for(lambda: (r := sopflow_json(up, "approvals")) and r[0]["step"] == "manager_approval",
                     "the manager's approval", timeout=300)
            print(f"answer to the next pause: {(datetime.now().astimezone() - answered).total_seconds():.1f} s")
            states, tasks = timeline(up, flow_run_id)
            report("timeline from the answer:", answered, states, tasks)
            print(f"task runs of the run so far: {len(tasks)} (lead {lead_id})")


def sopflow_json(up, *args: str) -> list[dict]:
    import json

    return json.loads(sopflow(up.env, *args, "--json"))


if __name__ == "__main__":
    main()
