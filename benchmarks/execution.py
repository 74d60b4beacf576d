"""Benchmark: leads from the intake to their approval pause, and answers to the next step, in one run:
sopflow's warm runner against stock `serve()` of the hand-written flow of the same shape.

    .venv/bin/python -m benchmarks.execution [--singles 5] [--leads 40] [--answers 10]   (`make bench` runs it)
    .venv/bin/python -m benchmarks.execution --burst 500           (a burst, then the runs parked at approvals)
    .venv/bin/python -m benchmarks.execution --burst 1000 --postgres   (Prefect's server on PostgreSQL)

Starts `sopflow up` on one SOP (benchmarks/sops/two-steps-then-approval.yaml: score, update, a rep's approval,
update) with its own home, ports and SQLite store. On that Prefect server, three contenders each take
`--singles` leads one at a time, then `--leads` at once, then `--answers` answers one at a time (after one
lead not counted, so no contender pays the server's first requests):
- sopflow up: leads POSTed to the intake; answers sent as `sopflow approve` and the approval page send them;
- benchmarks/hand_flow.py under stock `serve()` (a new `python -m prefect.engine` per run and per resume),
  polling every 10 s (its default) and every 1 s (as sopflow does); a lead's run is created from the
  deployment, an answer sent with the API's resume, as the Prefect UI does.
A lead's time runs from its trigger to its flow run's Suspended state; the flow's own time from Running to
Suspended; an answer's from the answer to the start of the next step's task run. Prints a table, then the
ratios against each baseline.

With `--burst N`, instead: N leads POSTed at once; while they run, the first `--answers` runs to pause are answered
one a second with the request the Prefect UI's form sends, and each answer's status is counted (no retry: what
the UI would show); checks none is lost or failed and no "database is locked" appears in any log; then, with the
other runs parked at the approval, counts the processes left, times `sopflow approvals` and reads the Prefect
server's memory before and after.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
from sqlalchemy import select

from sopflow import settings
from sopflow.settings import PROJECT_ROOT
from sopflow.store.models import Lead, SopRun
from tests.server_fixture import Sopflow, start_sopflow_up
from tests.postgres import new_database
from tests.support import environment, run_cli, wait_for

SOP = Path(__file__).parent / "sops" / "two-steps-then-approval.yaml"
ANSWER = {"decision": "approve", "approver": "Alex Kim", "notes": ""}


def lead(n: int, tag: str) -> dict[str, object]:
    return {"email": f"{tag}-{n}@bench.example", "name": f"Lead {n}", "company": f"Co {n}", "title": "VP Sales",
            "employees": 500, "industry": "software", "source": "website"}


def moment(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


@dataclass
class Figures:
    name: str
    one_lead: list[float]  # s from the trigger to the pause, one lead at a time
    flow_own: list[float]  # s each of those runs spent Running before it paused
    all_paused: float  # s from the first of a burst's triggers until all its runs paused
    burst: int
    answers: list[float]  # s from each answer to the start of the next step's task run, one at a time
    server_cpu: float  # s of CPU Prefect's server spent during the burst
    runner_cpu: float  # s of CPU the runner and its flow-run processes (sopflow: `sopflow up` but its server) spent
    failed: dict[str, str]  # flow run id: its final state and message, for each run that failed or crashed

    def row(self) -> str:
        return (f"| {self.name} | {statistics.median(self.one_lead):.2f} s | "
                f"{statistics.median(self.flow_own) * 1000:.0f} ms | {self.all_paused:.1f} s | "
                f"{self.burst / self.all_paused:.2f} | {statistics.median(self.answers):.2f} s | {len(self.failed)} |")


def prefect_client(up: Sopflow) -> httpx.Client:
    """A client of sopflow's Prefect API that waits out its SQLite database's busy spells (up to a minute)."""
    user, _, password = up.login.partition(":")
    return httpx.Client(base_url=up.api_url, auth=httpx.BasicAuth(user, password), timeout=90)


@dataclass
class Settled:
    paused: dict[str, float]  # flow run id: when it was suspended
    failed: dict[str, str]  # flow run id: its final state and message

    def __len__(self) -> int:
        return len(self.paused) + len(self.failed)


def settled(api: httpx.Client, flow_run_ids: list[str]) -> Settled:
    """Which of `flow_run_ids` are suspended now (and since when), and which failed or crashed (and why)."""
    found = Settled({}, {})
    for start in range(0, len(flow_run_ids), 200):
        chunk = flow_run_ids[start:start + 200]
        runs = api.post("/flow_runs/filter", json={"flow_runs": {"id": {"any_": chunk}}, "limit": 200}).json()
        for run in runs:
            state = run["state"] or {}
            if state.get("type") in ("FAILED", "CRASHED"):
                found.failed[run["id"]] = f"{state['type']}: {state.get('message')}"
            elif state.get("name") == "Suspended":
                found.paused[run["id"]] = moment(state["timestamp"])
    return found


def flow_own_seconds(api: httpx.Client, flow_run_id: str) -> float:
    """Seconds from the run's first Running to its first Suspended state."""
    states = api.get("/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
    first = {name: min(moment(s["timestamp"]) for s in states if s["name"] == name) for name in ("Running", "Suspended")}
    return first["Suspended"] - first["Running"]


def first_states_after(api: httpx.Client, flow_run_id: str, after: float, names: tuple[str, ...]) -> list[float]:
    """Seconds from `after` to the run's first state of each of `names` after it."""
    states = api.get("/flow_run_states/", params={"flow_run_id": flow_run_id}).json()
    return [min(moment(s["timestamp"]) for s in states if s["name"] == name and moment(s["timestamp"]) >= after)
            - after for name in names]


def wait_all_paused(up: Sopflow, flow_run_ids: list[str], timeout: float,
                    watch: Callable[[Settled], None] = lambda found: None) -> Settled:
    """Once every one of `flow_run_ids` is suspended, failed or crashed: which is which. `watch` sees each look."""
    def look(api: httpx.Client) -> Settled:
        found = settled(api, flow_run_ids)
        watch(found)
        return found

    with prefect_client(up) as api:
        return wait_for(lambda: (found := look(api)) and len(found) == len(flow_run_ids)
                        and found, f"{len(flow_run_ids)} runs to pause", timeout=timeout, every=0.25)


def next_task_start(up: Sopflow, flow_run_id: str, task_name: str, after: float) -> float:
    """When the run's first task run named `task_name`... that started after `after` started."""
    def started() -> float | None:
        with prefect_client(up) as api:
            tasks = api.post("/task_runs/filter", json={"flow_runs": {"id": {"any_": [flow_run_id]}},
                                                        "limit": 200}).json()
        times = [moment(t["start_time"]) for t in tasks
                 if t["name"].startswith(task_name) and t["start_time"] and moment(t["start_time"]) >= after]
        return min(times) if times else None
    return wait_for(started, f"task {task_name} of {flow_run_id}", timeout=120, every=0.05)


def busy_retry(request: Callable[[], httpx.Response]) -> httpx.Response:
    """`request`'s answer, asked again while Prefect's SQLite database is too busy to answer (503), up to 10 times."""
    for _ in range(10):
        response = request()
        if response.status_code != 503:
            break
        time.sleep(1)
    return response


def created(create: Callable[[], httpx.Response]) -> str:
    """The id of the flow run `create` makes."""
    response = busy_retry(create)
    assert response.status_code == 201, f"{response.status_code}: {response.text}"
    return response.json()["id"]


def answer_each(up: Sopflow, flow_run_ids: list[str], send: Callable[[str], None], next_task: str) -> list[float]:
    """Answer each run in turn; seconds from each answer to its next step's task run."""
    took = []
    for flow_run_id in flow_run_ids:
        sent = time.time()
        send(flow_run_id)
        took.append(next_task_start(up, flow_run_id, next_task, sent) - sent)
    return took


def post_leads(up: Sopflow, leads: list[dict[str, object]]) -> list[str]:
    """POST every lead at once (8 connections); the ids of the leads, in order."""
    headers = {"Authorization": f"Bearer {up.token}"}

    def post(body: dict[str, object]) -> str:
        with httpx.Client(timeout=60) as client:
            answer = client.post(f"{up.intake_url}/leads", json=body, headers=headers)
        assert answer.status_code == 201, f"{answer.status_code}: {answer.text}"
        return answer.json()["id"]

    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(post, leads))


def flow_runs_of(up: Sopflow, lead_ids: list[str], timeout: float) -> list[str]:
    """The flow run id of each lead's SOP run, once the dispatcher has created them all."""
    def created() -> list[str] | None:
        with up.store() as session:
            ids = dict(session.execute(select(SopRun.lead_id, SopRun.flow_run_id).where(
                SopRun.lead_id.in_(lead_ids), SopRun.flow_run_id.is_not(None))).all())
        return [ids[i] for i in lead_ids] if len(ids) == len(lead_ids) else None
    return wait_for(created, "every lead's flow run", timeout=timeout, every=0.1)


class Contender:
    """How leads reach one runner: `trigger` starts runs for new leads and returns their flow run ids; `runner`
    gives the pids whose CPU (with their reaped children's) is the runner's."""

    def __init__(self, name: str, trigger: Callable[[list[str]], list[str]], answer: Callable[[str], None],
                 next_task: str, runner: Callable[[], list[int]]) -> None:
        self.name, self.trigger, self.answer, self.next_task, self.runner = name, trigger, answer, next_task, runner

    def measure(self, up: Sopflow, singles: int, burst: int, answers: int) -> Figures:
        one_lead, own, tag = [], [], "".join(c for c in self.name if c.isalnum())[:40]
        failed = wait_all_paused(up, self.trigger([f"{tag}-warm-up"]), timeout=600).failed  # not counted in times
        with prefect_client(up) as api:
            for n in range(singles):
                started = time.time()
                flow_run_id = self.trigger([f"{tag}-one-{n}"])[0]
                ended = wait_all_paused(up, [flow_run_id], timeout=600)
                failed |= ended.failed
                if flow_run_id in ended.paused:
                    one_lead.append(ended.paused[flow_run_id] - started)
                    own.append(flow_own_seconds(api, flow_run_id))
        server, runner = [prefect_server_pid(up_session(up))], self.runner()
        cpu_before = cpu_seconds(server), cpu_seconds(runner)
        started = time.time()
        flow_run_ids = self.trigger([f"{tag}-burst-{n}" for n in range(burst)])
        ended = wait_all_paused(up, flow_run_ids, timeout=3600)
        all_paused, failed = max(ended.paused.values()) - started, failed | ended.failed
        time.sleep(2)  # the last runs' processes exit and are reaped
        server_cpu, runner_cpu = cpu_seconds(server) - cpu_before[0], cpu_seconds(runner) - cpu_before[1]
        took = answer_each(up, [run for run in flow_run_ids if run in ended.paused][:answers], self.answer,
                           self.next_task)
        return Figures(self.name, one_lead, own, all_paused, burst, took, server_cpu, runner_cpu, failed)


def through_intake(up: Sopflow) -> Contender:
    """sopflow: leads POSTed to the intake, their runs started by `sopflow up`, answered as `sopflow approve` does."""
    from sopflow.services.answering import send_answer

    def trigger(tags: list[str]) -> list[str]:
        return flow_runs_of(up, post_leads(up, [lead(0, tag) for tag in tags]), timeout=1800)

    def answer(flow_run_id: str) -> None:
        with environment(up.env):
            send_answer(flow_run_id, ANSWER)
    def runner() -> list[int]:
        server = prefect_server_pid(up_session(up))
        return [pid for pid, _, _, _ in group_processes(up_session(up)) if pid != server]
    return Contender("sopflow up (warm runner)", trigger, answer, "mark_qualified", runner)


def hand_written(up: Sopflow, deployment_id: str, name: str, serve_pid: int) -> Contender:
    """The hand-written flow: a lead row stored, its flow run created from the deployment, resumed by the API."""
    def trigger(tags: list[str]) -> list[str]:
        with up.store() as session, session.begin():  # leads only: no SOP run is claimed for them
            rows = [Lead(**lead(0, tag)) for tag in tags]
            session.add_all(rows)
            session.flush()
            lead_ids = [row.id for row in rows]
        with prefect_client(up) as api:
            return [created(lambda: api.post(f"/deployments/{deployment_id}/create_flow_run",
                                             json={"parameters": {"lead_id": lead_id}})) for lead_id in lead_ids]

    def answer(flow_run_id: str) -> None:
        with prefect_client(up) as api:
            busy_retry(lambda: api.post(f"/flow_runs/{flow_run_id}/resume", json={"run_input": {
                "decision": "approve", "approver": "Alex Kim"}})).raise_for_status()
    return Contender(name, trigger, answer, "set_status", lambda: [serve_pid])


@contextmanager
def serving_hand_flow(up: Sopflow, poll_seconds: float) -> Iterator[tuple[str, int]]:
    """benchmarks/hand_flow.py served by stock serve(); yields its deployment id once registered, and its pid."""
    env = {**os.environ, **up.env, "PREFECT_API_AUTH_STRING": up.login}
    log = open(up.home / f"hand-stock-{poll_seconds}.log", "wb")
    process = subprocess.Popen([sys.executable, "-m", "benchmarks.hand_flow", str(poll_seconds)], env=env,
                               stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT)

    def deployment() -> str | None:
        with prefect_client(up) as api:
            found = api.post("/deployments/filter", json={"deployments": {"name": {"any_": ["stock"]}}}).json()
        return found[0]["id"] if found else None
    try:
        deployment_id = wait_for(deployment, "the stock deployment", timeout=120)
        time.sleep(poll_seconds + 3)  # its runner is polling
        yield deployment_id, process.pid
    finally:
        process.terminate()
        process.wait(timeout=60)
        log.close()
        with prefect_client(up) as api:
            api.delete(f"/deployments/{deployment_id}")


def measured(contender: Contender, up: Sopflow, singles: int, burst: int, answers: int) -> Figures | None:
    """`contender`'s figures, printed at once; None, said why, when it could not finish (a stalled baseline)."""
    try:
        figures = contender.measure(up, singles, burst, answers)
        print("measured:", figures.row(), flush=True)
    except (AssertionError, ValueError, httpx.HTTPError) as exc:  # ValueError: no run of a part paused
        print(f"not measured: {contender.name}: {exc!r}", flush=True)
        return None
    for flow_run_id, why in figures.failed.items():
        print(f"  {contender.name}: flow run {flow_run_id} {why}", flush=True)
    return figures


def compare(up: Sopflow, singles: int, burst: int, answers: int) -> None:
    ours = measured(through_intake(up), up, singles, burst, answers)
    stock = []
    for poll, name in ((10.0, "hand-written flow, stock serve() (polls every 10 s)"),
                       (1.0, "hand-written flow, stock serve() polling every 1 s")):
        with serving_hand_flow(up, poll) as (deployment_id, serve_pid):
            stock.append(measured(hand_written(up, deployment_id, name, serve_pid), up, singles, burst, answers))
    results = [figures for figures in (ours, *stock) if figures]
    stock = [figures for figures in stock if figures]
    print(f"{singles} leads one at a time, then {burst} at once, then {answers} answers one at a time "
          f"(this machine: {os.cpu_count()} cores, {settings.flow_run_slots()} flow run slots)")
    print("| runner | one lead to its pause (median) | flow's own time | burst: all paused | leads/s | answer to "
          "next step (median) | runs failed |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for figures in results:
        print(figures.row())
    for figures in results:
        print(f"{figures.name}, burst of {burst}: Prefect's server {figures.server_cpu / burst:.2f} s CPU per lead, "
              f"the runner and its runs {figures.runner_cpu / burst:.2f} s ({os.cpu_count()} cores: at most "
              f"{os.cpu_count() / ((figures.server_cpu + figures.runner_cpu) / burst):.1f} leads/s at that cost)")
    if ours is None or ours.failed:
        raise SystemExit("sopflow's runs did not all reach their approval: see above")
    median = statistics.median
    for base in stock:
        print(f"against {base.name}: one lead {median(base.one_lead) / median(ours.one_lead):.1f}x faster, burst "
              f"{base.all_paused / ours.all_paused:.1f}x, answer {median(base.answers) / median(ours.answers):.1f}x "
              f"(target 10x); sopflow's flow costs {median(ours.flow_own) / median(base.flow_own):.2f}x the "
              "hand-written one (its own time, leads one at a time; target at most 1.1x)")


def group_processes(pgid: int) -> list[tuple[int, int, int, str]]:
    """(pid, parent pid, resident KiB, command) of every process in process group `pgid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) != pgid:
                continue
            rss = next(int(line.split()[1]) for line in (entry / "status").read_text().splitlines()
                       if line.startswith("VmRSS:"))
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, StopIteration, ValueError, IndexError):
            continue
        found.append((int(entry.name), int(fields[1]), rss, command))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """CPU seconds the processes `pids` and the children they reaped have used (0 for one that has ended)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(tick) for tick in fields[11:15])  # utime, stime, cutime, cstime
    return total / os.sysconf("SC_CLK_TCK")


SERVER_COMMAND = "prefect_cli server start"  # how deployments/server.py starts Prefect's server


def prefect_server_pid(pgid: int) -> int:
    return next(pid for pid, _, _, command in group_processes(pgid) if SERVER_COMMAND in command)


def server_rss(pgid: int) -> int:
    return sum(rss for _, _, rss, command in group_processes(pgid) if SERVER_COMMAND in command)


def answer_as_the_ui(up: Sopflow, lead_ids: list[str], count: int) -> list[tuple[str, float, float, str]]:
    """While a burst runs: answer the first `count` of its leads' runs to pause, one a second, with the request the
    Prefect UI's form sends (no retry: what the UI would show); (run, when sent, seconds to answer, outcome) each."""
    sent: list[tuple[str, float, float, str]] = []
    with prefect_client(up) as api:
        while len(sent) < count:
            answered = {run for run, _, _, _ in sent}
            with up.store() as session:
                created = list(session.scalars(select(SopRun.flow_run_id).where(
                    SopRun.lead_id.in_(lead_ids), SopRun.flow_run_id.is_not(None))))
            waiting = [run for run in settled(api, created).paused if run not in answered]
            if waiting:
                flow_run_id, began = waiting[0], time.time()
                try:
                    response = api.post(f"/flow_runs/{flow_run_id}/resume", json={"run_input": ANSWER})
                    outcome = f"{response.status_code} {response.json().get('status')}"
                except httpx.HTTPError as exc:
                    outcome = repr(exc)
                sent.append((flow_run_id, began, time.time() - began, outcome))
            time.sleep(1)
    return sent


def burst(size: int, up: Sopflow, pgid: int, answers: int) -> None:
    memory_before = server_rss(pgid)
    started = time.time()
    lead_ids = post_leads(up, [lead(n, "burst") for n in range(size)])
    posted = time.time() - started
    sent = answer_as_the_ui(up, lead_ids, answers)
    flow_run_ids = flow_runs_of(up, lead_ids, timeout=1800)
    answered = {run: began for run, began, _, outcome in sent if outcome == "201 ACCEPT"}  # the others stay paused
    if sent:
        print(f"{len(sent)} answers sent as the Prefect UI sends them while the burst ran, from "
              f"{sent[0][1] - started:.0f} s to {sent[-1][1] - started:.0f} s: {len(answered)} accepted (201 ACCEPT), "
              f"median {statistics.median(took for _, _, took, _ in sent) * 1000:.0f} ms, slowest "
              f"{max(took for _, _, took, _ in sent) * 1000:.0f} ms")
    for flow_run_id, _, _, outcome in sent:
        if outcome != "201 ACCEPT":
            print(f"  answer to {flow_run_id}: {outcome}")
    memory: dict[int, int] = {}  # runs parked: the server's KiB when that many first were

    def sample(found: Settled) -> None:
        memory.setdefault(len(found.paused), server_rss(pgid))

    ended = wait_all_paused(up, [run for run in flow_run_ids if run not in answered], timeout=3600, watch=sample)
    onward = [next_task_start(up, run, "mark_qualified", began) - began for run, began in answered.items()]
    if onward:
        with prefect_client(up) as api:
            taken = [first_states_after(api, run, began, ("Pending", "Running")) for run, began in answered.items()]
        print(f"answered runs: the next step started a median {statistics.median(onward):.2f} s after the answer "
              f"(slowest {max(onward):.2f} s); the runner took them (Pending) after "
              f"{statistics.median(pending for pending, _ in taken):.2f} s, their processes were Running after "
              f"{statistics.median(running for _, running in taken):.2f} s")
    last = max(ended.paused.values()) - started
    print(f"{size} leads POSTed in {posted:.1f} s; {len(ended.paused)} runs waited at the approval after "
          f"{last:.1f} s ({len(ended.paused) / last:.1f} leads/s); {len(ended.failed)} failed or crashed")
    for flow_run_id, why in ended.failed.items():
        print(f"  flow run {flow_run_id} {why}")
    with up.store() as session:
        states = session.execute(select(SopRun.state).where(SopRun.lead_id.in_(lead_ids))).scalars().all()
    print(f"store: {len(states)} runs, {sum(s == 'waiting' for s in states)} waiting, "
          f"{sum(s == 'completed' for s in states)} completed; none lost: {len(states) == size}")
    locked = [path.name for path in up.home.glob("*.log") if "database is locked" in path.read_text(errors="replace")]
    locked += ["up.log"] if "database is locked" in up.log.read_text(errors="replace") else []
    print(f'"database is locked" in: {", ".join(locked) or "no log"}')
    time.sleep(5)  # the last runs' processes exit
    processes = group_processes(pgid)
    forkservers = {pid for pid, _, _, command in processes if "forkserver" in command}
    flow_processes = [pid for pid, parent, _, _ in processes if parent in forkservers]  # each run is forked from it
    print(f"flow-run processes (forked from the warm parent) left with {size} runs parked: {len(flow_processes)} "
          f"(of {len(processes)} processes of sopflow up: its server, intake and its workers, forkserver, trackers)")
    for args in (("approvals",), ("approvals", "--json")):
        times = []
        for _ in range(3):
            began = time.perf_counter()
            listed = run_cli(up.env, *args)
            times.append(time.perf_counter() - began)
        print(f"`sopflow {' '.join(args)}` listing {len(ended.paused)} waiting: best {min(times):.2f} s of 3 "
              f"(a new process each time, {len(listed.stdout.splitlines())} lines into a pipe)")
    with environment(up.env):
        from sopflow.store.db import transaction
        from sopflow.store.history import waiting_rows

        began = time.perf_counter()
        with transaction() as session:
            rows = waiting_rows(session, None, None)
        print(f"its query alone: {(time.perf_counter() - began) * 1000:.0f} ms for {len(rows)} rows")
    quarters = [next(kib for parked, kib in sorted(memory.items()) if parked >= len(ended.paused) * q // 4)
                for q in range(1, 5)]
    print(f"Prefect server memory: {memory_before / 1024:.0f} MiB before; with a quarter, half, three quarters and "
          f"all of the runs parked: {', '.join(f'{kib / 1024:.0f}' for kib in quarters)} MiB; "
          f"{server_rss(pgid) / 1024:.0f} MiB at the end")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--singles", type=int, default=9, help="leads sent one at a time")
    parser.add_argument("--leads", type=int, default=40, help="leads sent at once")
    parser.add_argument("--answers", type=int, default=10, help="answers one at a time (with --burst: during it)")
    parser.add_argument("--burst", type=int, default=0, help="instead: a burst of this many leads, then parked runs")
    parser.add_argument("--postgres", action="store_true",
                        help="Prefect's server on a new PostgreSQL database (SOPFLOW_PREFECT_DATABASE_URL), not SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        root = Path(tmp)
        sop_dir = root / "sops"
        sop_dir.mkdir()
        shutil.copy(SOP, sop_dir / SOP.name)
        settings = {"SOPFLOW_INTAKE_READ_TIMEOUT": "30"}
        if args.postgres:
            settings["SOPFLOW_PREFECT_DATABASE_URL"] = stack.enter_context(new_database("prefect_bench"))
        print(f"Prefect's server on {'PostgreSQL' if args.postgres else 'SQLite'}")
        with start_sopflow_up(root, sop_dir, settings) as up:
            if args.burst:
                burst(args.burst, up, up_session(up), args.answers)
            else:
                compare(up, args.singles, args.leads, args.answers)


def up_session(up: Sopflow) -> int:
    """The process group of `sopflow up` (it leads its own session): its pid."""
    port = up.intake_url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"up" in command and f"--intake-port\0{port}".encode() in b"\0".join(command):
            return int(entry.name)
    raise AssertionError("sopflow up is not running")


if __name__ == "__main__":
    main()
