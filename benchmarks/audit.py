"""Benchmark: the audit of N runs (6 step records each) beside one hand-written SQL aggregate over the same data,
on SQLite and on PostgreSQL.

    .venv/bin/python benchmarks/audit.py [--runs 10000] [--postgres postgresql+psycopg://postgres@127.0.0.1:5432]

The history: lead-qualification runs created over the last 6 days, each with the six records of an approved
run; 5% of rep answers are late, 1% of manager answers come from someone off the roster, 2% of runs still
wait at the rep's step. `audit` is sopflow.audit.audit (every check, adherence); `sql` is one GROUP BY over
runs and step records (per step: executions, skips, SLA misses) that a person would write by hand. Each is
timed 5 times; the median counts. Both must agree on the SLA misses.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import case, create_engine, func, insert, literal_column, or_, select, text
from sqlalchemy.engine import make_url

from sopflow.audit import OPEN_STATES, audit
from sopflow.loader import load_sop
from sopflow.settings import PROJECT_ROOT
from sopflow.store.db import engine, transaction
from sopflow.store.models import Approval, Lead, SopRun, StepRecord

NOW = datetime(2026, 11, 23, 12, tzinfo=timezone.utc)
SINCE = NOW - timedelta(days=7)
SOP = load_sop(PROJECT_ROOT / "sop_definitions" / "lead-qualification.yaml")
DUE_HOURS = {"rep_qualification": 48, "manager_approval": 24}
REPEATS = 5


def build(url: str, count: int) -> None:
    """`count` runs and 6 * `count` step records (minus the waiting runs' last four), in a few bulk inserts."""
    rng = random.Random(7)
    leads, runs, records, asks = [], [], [], []
    for n in range(count):
        lead_id, run_id = f"{n:08d}-0000-4000-8000-000000000000", f"{n:08d}-0000-4000-8000-000000000001"
        created = NOW - timedelta(seconds=rng.randrange(6 * 86400))
        waiting = rng.random() < 0.02
        leads.append({"id": lead_id, "email": f"lead{n}@example.com", "status": "new", "fields": {},
                      "created_at": created, "updated_at": created})
        runs.append({"id": run_id, "sop_id": SOP.sop.id, "lead_id": lead_id, "sop_version": SOP.sop.version,
                     "sop_hash": SOP.content_hash, "state": "waiting" if waiting else "completed",
                     "created_at": created, "started_at": created, "ended_at": None if waiting else created})
        rep_hours = 50 if rng.random() < 0.05 else rng.uniform(1, 40)
        manager = "Sam Stranger" if rng.random() < 0.01 else "Maria Lopez"
        steps = [("score_lead", "score", "completed", {}, 0.001), ("send_to_nurture", "update_lead", "skipped", {}, 0),
                 ("rep_qualification", "approval", "completed", {"decision": "approve", "approver": "Alex Kim"},
                  rep_hours),
                 ("manager_approval", "approval", "completed", {"decision": "approve", "approver": manager}, 3),
                 ("follow_up_email", "email", "completed", {}, 0.001),
                 ("mark_qualified", "update_lead", "completed", {"status": "qualified"}, 0.001)]
        moment = created
        for step_id, kind, status, result, took in steps[:2] if waiting else steps:
            ended = moment + timedelta(hours=took)
            records.append({"sop_run_id": run_id, "step_id": step_id, "kind": kind, "status": status,
                            "result": result, "started_at": moment, "ended_at": ended})
            moment = ended
        if waiting:
            asks.append({"sop_run_id": run_id, "step_id": "rep_qualification", "ask": 0, "role": "rep", "prompt": "?",
                         "asked_at": moment, "due_by": moment + timedelta(hours=48)})
    with engine(url).begin() as connection:
        for model, rows in ((Lead, leads), (SopRun, runs), (StepRecord, records), (Approval, asks)):
            connection.execute(insert(model), rows)


def hand_sql(url: str) -> dict[str, tuple[int, int, int]]:
    """Per step: executions, skips and SLA misses, in one GROUP BY written for the store's dialect."""
    if make_url(url).get_backend_name() == "sqlite":
        took = literal_column("(julianday(step_records.ended_at) - julianday(step_records.started_at)) * 24")
    else:
        took = literal_column("extract(epoch from step_records.ended_at - step_records.started_at) / 3600")
    due = case(*((StepRecord.step_id == step, hours) for step, hours in DUE_HOURS.items()), else_=None)
    query = (select(StepRecord.step_id, func.count(), func.sum(case((StepRecord.status == "skipped", 1), else_=0)),
                    func.sum(case((took > due, 1), else_=0)))
             .join(SopRun, SopRun.id == StepRecord.sop_run_id)
             .where(or_(SopRun.created_at >= SINCE, SopRun.state.in_(OPEN_STATES)))
             .group_by(StepRecord.step_id))
    with engine(url).connect() as connection:
        return {step: (n, skipped, late) for step, n, skipped, late in connection.execute(query)}


def sopflow_audit(url: str) -> int:
    with transaction(url) as session:
        result = audit(session, {SOP.sop.id: SOP}, SINCE, NOW)
    return sum(f.kind == "sla_missed" for f in result.findings)


def timed(work, url: str):  # noqa: ANN001, ANN201
    seconds = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        answer = work(url)
        seconds.append(time.perf_counter() - started)
    return statistics.median(seconds), answer


def bench(label: str, url: str, count: int) -> None:
    started = time.perf_counter()
    build(url, count)
    with engine(url).connect() as connection:
        records = connection.scalar(select(func.count()).select_from(StepRecord))
    print(f"{label}: {count:,} runs, {records:,} step records; built in {time.perf_counter() - started:.1f} s")
    sql_seconds, per_step = timed(hand_sql, url)
    audit_seconds, late = timed(sopflow_audit, url)
    sql_late = sum(row[2] for row in per_step.values())
    print(f"  {'hand-written SQL aggregate':<28} {sql_seconds * 1000:>9.0f} ms   1.0x")
    print(f"  {'sopflow audit':<28} {audit_seconds * 1000:>9.0f} ms {audit_seconds / sql_seconds:>5.1f}x   "
          f"({count / audit_seconds:,.0f} runs/s)")
    print(f"  SLA misses: audit {late}, SQL {sql_late} ({'agree' if late == sql_late else 'DISAGREE'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--postgres", default="postgresql+psycopg://postgres@127.0.0.1:5432",
                        help="A PostgreSQL server to create (and drop) a database on; 'none' to skip.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench("SQLite", f"sqlite:///{Path(tmp) / 'bench.db'}", args.runs)
    if args.postgres == "none":
        return
    name = f"sopflow_bench_audit_{os.getpid()}"
    admin = create_engine(f"{args.postgres}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        bench("PostgreSQL", f"{args.postgres}/{name}", args.runs)
    finally:
        engine(f"{args.postgres}/{name}").dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
