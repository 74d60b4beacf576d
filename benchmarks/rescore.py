"""Benchmark: set-based rescoring against Python loops, on one SQLite store of N leads and 3N events.

    /tmp/venv1/bin/python benchmarks/rescore.py [--leads 100000]

Phases, each in a fresh process on the same unscored data: `sql` (rescore_open_leads); `loop` (per open
lead: read it and its counts, score_lead, write back via the ORM); `batched` (read leads and grouped counts
once, score_lead each, one executemany). Prints time, leads/s, x sql, peak RSS (+growth); checks all agree.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import bindparam, func, insert, select, update

from flows.rescore import scoring_model
from sopflow.rescoring import CLOSED, EVENTS, LEADS, rescore_open_leads
from sopflow.schema import ScoreStep
from sopflow.scoring import ENGAGEMENT_KINDS, engagement_since, score_for_step
from sopflow.store import engagement
from sopflow.store.db import engine, transaction
from sopflow.store.models import Lead

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)
FIT = scoring_model()[1].model_dump()  # the shipped scoring model's fit rules, plus engagement ones
STEP = ScoreStep.model_validate({**FIT, "caps": {"fit": 60, "engagement": 40}, "rules": [*FIT["rules"],
    {"label": "Opens", "field": "opened", "at_least": 2, "points": 10, "group": "engagement"},
    {"label": "Replied", "field": "replied", "at_least": 1, "points": 20, "group": "engagement"},
    {"label": "Meeting", "field": "meeting", "at_least": 1, "points": 25, "group": "engagement"},
    {"label": "Site visits", "field": "visit", "at_least": 3, "points": 10, "group": "engagement"},
    {"label": "Unsubscribed", "field": "source", "equals": "unsubscribed", "points": -50, "group": "negative"},
]})
COLUMNS = ("name", "company", "title", "employees", "industry", "source", "status", "score", "grade")
TITLES = ["VP Sales", "Head of IT", "Sales Manager", "Engineer", "Student", "Team Lead", "Directeur Général", None]
INDUSTRIES = ["Software", "fintech", "retail", "healthcare", "énergie", None]
SOURCES = ["website", "referral", "event", "demo request", "unsubscribed", None]
STATUSES = ["new"] * 6 + ["working", "nurture", "customer", "closed_lost"]


def build(url: str, leads: int, per_lead: int = 3) -> None:
    rng = random.Random(7)
    rows = [{"id": f"{n:08d}-lead", "email": f"lead{n}@example.com", "name": f"Lead {n}", "title": rng.choice(TITLES),
             "employees": rng.choice([None, rng.randint(1, 5000)]), "industry": rng.choice(INDUSTRIES),
             "source": rng.choice(SOURCES), "status": rng.choice(STATUSES), "fields": {}, "created_at": NOW,
             "updated_at": NOW} for n in range(leads)]
    events = [{"lead_id": rows[rng.randrange(leads)]["id"], "kind": rng.choice(ENGAGEMENT_KINDS), "source": "bench",
               "occurred_at": NOW - timedelta(seconds=rng.randrange(90 * 86400))} for _ in range(leads * per_lead)]
    with engine(url).begin() as connection:
        connection.execute(insert(LEADS), rows)
        connection.execute(insert(EVENTS), events)


def loop(url: str) -> int:
    """The plain loop: every open lead, its counts, score_lead, written back through the ORM."""
    since, changed = engagement_since(STEP.decay_days, NOW), 0
    with transaction(url) as session:
        for lead in session.scalars(select(Lead).where(Lead.status.not_in(CLOSED))):
            view = {name: getattr(lead, name) for name in COLUMNS} | {"stage": (lead.fields or {}).get("stage")}
            result = score_for_step(STEP, view | engagement.counts(session, lead.id, since))
            if (lead.score, lead.grade, view["stage"]) != (result["score"], result["grade"], result["stage"]):
                lead.score, lead.grade = result["score"], result["grade"]
                lead.fields = {**(lead.fields or {}), "stage": result["stage"]}
                changed += 1
    return changed


def batched(url: str) -> int:
    """The best plain-Python shape: two reads, Python scoring, one executemany write."""
    since = engagement_since(STEP.decay_days, NOW)
    with engine(url).begin() as connection:
        counts: dict[str, dict[str, int]] = {}
        grouped = select(EVENTS.c.lead_id, EVENTS.c.kind, func.count()).where(EVENTS.c.occurred_at >= since)
        for lead_id, kind, n in connection.execute(grouped.group_by(EVENTS.c.lead_id, EVENTS.c.kind)):
            counts.setdefault(lead_id, dict.fromkeys(ENGAGEMENT_KINDS, 0))[kind] = n
        zero, updates = dict.fromkeys(ENGAGEMENT_KINDS, 0), []
        for row in connection.execute(select(LEADS).where(LEADS.c.status.not_in(CLOSED))).mappings():
            fields = row["fields"] or {}
            view = {name: row[name] for name in COLUMNS} | {"stage": fields.get("stage")}
            result = score_for_step(STEP, view | counts.get(row["id"], zero))
            if (row["score"], row["grade"], view["stage"]) != (result["score"], result["grade"], result["stage"]):
                updates.append({"key": row["id"], "s": result["score"], "g": result["grade"],
                                "f": {**fields, "stage": result["stage"]}})
        if updates:
            connection.execute(update(LEADS).where(LEADS.c.id == bindparam("key"))
                               .values(score=bindparam("s"), grade=bindparam("g"), fields=bindparam("f")), updates)
    return len(updates)


PHASES = {"sql": lambda url: rescore_open_leads(STEP, url, NOW), "loop": loop, "batched": batched}


def rss_mb(key: str) -> float:  # VmRSS (now) or VmHWM (peak); ru_maxrss keeps the parent's peak across exec
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(status[key].split()[0]) / 1024


def phase(name: str, url: str) -> None:
    before, started = rss_mb("VmRSS"), time.perf_counter()
    changed = PHASES[name](url)
    seconds, peak = time.perf_counter() - started, rss_mb("VmHWM")
    print(json.dumps({"seconds": seconds, "changed": changed, "rss_before_mb": before, "peak_rss_mb": peak}))


def fingerprint(url: str) -> int:
    with engine(url).connect() as connection:
        rows = connection.execute(select(LEADS.c.id, LEADS.c.score, LEADS.c.grade, LEADS.c.fields).order_by(LEADS.c.id))
        return hash(tuple((i, s, g, (f or {}).get("stage")) for i, s, g, f in rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--phase", choices=PHASES, help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        return phase(args.phase, args.url)
    with tempfile.TemporaryDirectory() as tmp:
        url, started = f"sqlite:///{Path(tmp) / 'bench.db'}", time.perf_counter()
        build(url, args.leads)
        with engine(url).connect() as connection:
            open_leads = connection.scalar(select(func.count()).select_from(LEADS).where(LEADS.c.status.not_in(CLOSED)))
        print(f"{args.leads:,} leads ({open_leads:,} open), {3 * args.leads:,} engagement events; "
              f"built in {time.perf_counter() - started:.1f}s (SQLite {url})")
        results, prints = {}, set()
        for name in PHASES:
            with engine(url).begin() as connection:  # every phase starts from unscored leads
                connection.execute(update(LEADS).values(score=None, grade=None, fields={}))
            out = subprocess.run([sys.executable, __file__, "--phase", name, "--url", url],
                                 check=True, capture_output=True, text=True).stdout
            results[name] = json.loads(out.strip().splitlines()[-1])
            prints.add(fingerprint(url))
        base = results["sql"]["seconds"]
        print(f"{'phase':<8} {'seconds':>8} {'leads/s':>10} {'x sql':>7} {'changed':>8} {'peak RSS (growth)':>18}")
        for name, r in results.items():
            print(f"{name:<8} {r['seconds']:>8.2f} {open_leads / r['seconds']:>10,.0f} {r['seconds'] / base:>7.1f} "
                  f"{r['changed']:>8,} {r['peak_rss_mb']:>8.0f}MB (+{r['peak_rss_mb'] - r['rss_before_mb']:.0f}MB)")
        print("identical scores, grades and stages in every phase:", "yes" if len(prints) == 1 else "NO")


if __name__ == "__main__":
    main()
