"""Benchmark: 500 leads POSTed at once to the intake, against the obvious FastAPI intake, in one run.

    .venv/bin/python benchmarks/intake.py [--leads 500] [--rounds 5]

Each server runs in a process of its own on a fresh SQLite store, as `sopflow up` runs the intake:
- `sopflow`: `python -m sopflow.web --workers 2`, as `sopflow up` runs it (httptools, uvloop, the
  guard, leads written in batches);
- `baseline`: what FastAPI's tutorial gives: a `def` route taking `LeadIn`, one transaction per
  request (the same `store_leads`), on uvicorn's defaults (h11, asyncio).
A client process opens one connection per lead and sends every POST at once: one warm-up burst,
then `--rounds` measured ones, each with new leads; an answer's time runs from connect to its last
byte. Prints, per server, the
median and 99th-percentile answer (over all rounds, and the worst round's p99), leads per second,
and whether every lead was answered and stored exactly once; then the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import func, select

from sopflow.leads import LeadIn  # at module level: FastAPI resolves the route's annotations here

TOKEN = "bench-token"


def serve_baseline(port: int) -> None:
    """The obvious intake: FastAPI's body model, a sync route, one transaction per lead, uvicorn defaults."""
    import uvicorn
    from fastapi import FastAPI, Header, HTTPException

    from sopflow.catalog import sops_started_by
    from sopflow.store.leads import store_leads

    sops, app = sops_started_by("new_lead"), FastAPI()

    @app.post("/leads", status_code=201)
    def post_lead(lead: LeadIn, authorization: str = Header("")) -> dict:
        if authorization != f"Bearer {TOKEN}":
            raise HTTPException(401)
        return store_leads([lead], sops)[0].as_json()

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok"}

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


class _Exchange(asyncio.Protocol):
    def __init__(self, request: bytes, done: asyncio.Future) -> None:
        self.request, self.done, self.received = request, done, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        self.received += data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.received)


async def burst(port: int, bodies: list[bytes]) -> list[tuple[int, float]]:
    """POST every body at once, one connection each: (status or 0, seconds from connect to answer)."""
    loop = asyncio.get_running_loop()

    async def one(body: bytes) -> tuple[int, float]:
        request = (b"POST /leads HTTP/1.1\r\nHost: intake\r\nAuthorization: Bearer %s\r\nContent-Type: "
                   b"application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
                   % (TOKEN.encode(), len(body), body))
        done = loop.create_future()
        started = time.perf_counter()
        try:
            await loop.create_connection(lambda: _Exchange(request, done), "127.0.0.1", port)
            answer = await asyncio.wait_for(done, 60)
        except (OSError, TimeoutError):
            return 0, time.perf_counter() - started
        status = answer.split(b" ", 2)[1] if answer.startswith(b"HTTP/1.1 ") else b"0"
        return int(status), time.perf_counter() - started

    return await asyncio.gather(*(one(body) for body in bodies))


def client(port: int, leads: int, rounds: int, tag: str) -> None:
    """Run in a process of its own: the bursts against `port`, printed as JSON."""
    import uvloop

    warm = [json.dumps({"email": f"{tag}-warm-{n}@bench.example"}).encode() for n in range(leads)]
    uvloop.run(burst(port, warm))  # not measured: both servers answer their first burst cold
    time.sleep(0.5)
    results = []
    for round_ in range(rounds):
        bodies = [json.dumps({"email": f"{tag}-{round_}-{n}@bench.example", "name": f"Lead {n}", "company": "Bench",
                              "employees": 250}).encode() for n in range(leads)]
        started = time.perf_counter()
        answers = uvloop.run(burst(port, bodies))
        results.append({"wall": time.perf_counter() - started, "answers": answers})
        time.sleep(0.5)
    print(json.dumps(results))


def measure(name: str, command: list[str], port: int, env: dict[str, str], leads: int, rounds: int) -> dict:
    server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{name} did not start") from None
                time.sleep(0.2)
        out = subprocess.run([sys.executable, __file__, "--client", str(port), "--leads", str(leads),
                              "--rounds", str(rounds), "--tag", name], capture_output=True, text=True, check=True)
    finally:
        server.terminate()
        server.wait(timeout=30)
    results = json.loads(out.stdout)
    from sopflow.store.db import engine, transaction
    from sopflow.store.models import Lead, SopRun

    with transaction(env["SOPFLOW_DATABASE_URL"]) as session:
        measured = select(Lead.id).where(Lead.email.not_like("%-warm-%"))  # the warm-up burst's leads aside
        stored = session.scalar(select(func.count()).select_from(measured.subquery()))
        runs = session.scalar(select(func.count()).where(SopRun.lead_id.in_(measured)))
    engine(env["SOPFLOW_DATABASE_URL"]).dispose()
    times = sorted(seconds for result in results for _, seconds in result["answers"])
    statuses = [status for result in results for status, _ in result["answers"]]
    round_p99 = [sorted(s for _, s in r["answers"])[int(len(r["answers"]) * 0.99) - 1] for r in results]
    return {
        "name": name, "p50": statistics.median(times), "p99": times[int(len(times) * 0.99) - 1],
        "worst_round_p99": max(round_p99), "per_second": leads / statistics.median(r["wall"] for r in results),
        "answered_201": statuses.count(201), "sent": len(statuses), "stored": stored, "runs": runs,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leads", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--serve-baseline", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tag", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        return client(args.client, args.leads, args.rounds, args.tag)
    if args.serve_baseline:
        return serve_baseline(args.serve_baseline)

    from deployments.server import free_port

    rows = []
    for name in ("baseline", "sopflow"):
        home = Path(tempfile.mkdtemp(prefix=f"bench-intake-{name}-"))
        env = {**os.environ, "SOPFLOW_HOME": str(home), "SOPFLOW_DATABASE_URL": f"sqlite:///{home / 'sopflow.db'}",
               "SOPFLOW_INTAKE_TOKEN": TOKEN}
        port = free_port()
        command = ([sys.executable, "-m", "sopflow.web", "--port", str(port), "--workers", "2"] if name == "sopflow"
                   else [sys.executable, __file__, "--serve-baseline", str(port)])
        rows.append(measure(name, command, port, env, args.leads, args.rounds))

    print(f"\n{args.leads} leads POSTed at once, {args.rounds} rounds, SQLite store, {os.cpu_count()} cores\n")
    print(f"{'server':<10} {'median':>8} {'p99':>8} {'worst p99':>10} {'leads/s':>9}  answered 201 / sent, stored")
    for row in rows:
        print(f"{row['name']:<10} {row['p50'] * 1000:>6.0f}ms {row['p99'] * 1000:>6.0f}ms "
              f"{row['worst_round_p99'] * 1000:>8.0f}ms {row['per_second']:>9.0f}  "
              f"{row['answered_201']} / {row['sent']}, {row['stored']} leads, {row['runs']} runs")
    base, ours = rows
    print(f"\nratio baseline/sopflow: p99 {base['p99'] / ours['p99']:.1f}x, "
          f"median {base['p50'] / ours['p50']:.1f}x, leads/s {ours['per_second'] / base['per_second']:.1f}x")


if __name__ == "__main__":
    main()
