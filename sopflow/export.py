"""The run history as an event log for process mining: one case per SOP run, one event per step outcome.

`cases` reads the store in one streamed SELECT; `sopflow.export_xes` and `sopflow.export_ocel` write the
cases; `write_atomically` puts a writer's output in place only once it is whole. Nothing of a lead but its
id leaves the store: no email, name or company, and of a step's result only an approval's approver.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from itertools import groupby
from pathlib import Path
from typing import IO

from sqlalchemy import select
from sqlalchemy.orm import Session

from sopflow.roster import SOPFLOW
from sopflow.store.models import SopRun, StepRecord

AUTOMATED = SOPFLOW  # the resource of every step no person answered
EPOCH = "1970-01-01T00:00:00.000+00:00"  # the time of a value without a time of its own


@dataclass(frozen=True)
class Event:
    """One step's outcome: `time` is when it ended; `approver` who answered it, for an answered approval."""

    step_id: str
    kind: str
    status: str  # completed | skipped
    started: datetime
    time: datetime
    approver: str | None

    @property
    def resource(self) -> str:
        """Who did it: the approver, else "sopflow" (every other step is automated, and sopflow skips steps)."""
        return self.approver or AUTOMATED


@dataclass(frozen=True)
class Case:
    """One SOP run and its events, oldest first."""

    run_id: str
    sop_id: str
    version: int | None
    state: str
    outcome: str | None
    lead_id: str
    events: list[Event] = field(default_factory=list)


@dataclass
class Tally:
    """What a writer wrote: how many runs and events, of which SOPs."""

    runs: int = 0
    events: int = 0
    sops: set[str] = field(default_factory=set)

    def add(self, case: Case) -> None:
        self.runs, self.events = self.runs + 1, self.events + len(case.events)
        self.sops.add(case.sop_id)


def iso(moment: datetime) -> str:
    """ISO 8601 with milliseconds and the UTC offset: 2026-11-02T12:00:00.000+00:00."""
    return moment.astimezone(timezone.utc).isoformat(timespec="milliseconds")


def cases(session: Session, sop_id: str | None = None, since: date | None = None) -> Iterator[Case]:
    """The runs (of `sop_id`, created on or after `since` UTC, when given), oldest first, each with its events.

    Runs with no step yet (pending, cancelled) are cases without events. One SELECT of the runs outer-joined
    with their step records, streamed in batches and grouped by run.
    """
    query = (
        select(SopRun.id, SopRun.sop_id, SopRun.sop_version, SopRun.state, SopRun.outcome, SopRun.lead_id,
               StepRecord.step_id, StepRecord.kind, StepRecord.status, StepRecord.started_at, StepRecord.ended_at,
               StepRecord.result["approver"].as_string())  # of a step's result, only this leaves the store
        .outerjoin(StepRecord, StepRecord.sop_run_id == SopRun.id)
        .order_by(SopRun.created_at, SopRun.id, StepRecord.ended_at, StepRecord.id)
    )
    if sop_id:
        query = query.where(SopRun.sop_id == sop_id)
    if since:
        query = query.where(SopRun.created_at >= datetime.combine(since, time(), tzinfo=timezone.utc))
    rows = session.execute(query.execution_options(yield_per=1000)).tuples()
    for run, group in groupby(rows, key=lambda row: row[:6]):
        case = Case(*run)
        for *_, step_id, kind, status, started, ended, answered_by in group:
            if step_id is not None:
                approver = answered_by if kind == "approval" else None
                case.events.append(Event(step_id, kind, status, started, ended, approver or None))
        yield case


def write_atomically(path: Path, write: Callable[[IO[str]], Tally]) -> Tally:
    """Run `write` on a temporary file beside `path`, then rename it to `path`; on any error remove it.

    OSError when `path`'s directory is missing or not writable, or `path` is a directory.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            tally = write(out)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temporary, 0o666 & ~umask)  # as open() would make it: mkstemp makes it owner-only
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return tally
