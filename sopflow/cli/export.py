"""`sopflow export`: the run history as an XES or OCEL 2.0 event log, for process-mining tools."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import Annotated

import typer

from sopflow.cli.app import app
from sopflow.cli.catalog import check_sop, sops_on_file
from sopflow.cli.output import choices, fail, say

LogFormat = choices("LogFormat", ["xes", "ocel"])
FORMAT_NAMES = {"xes": "XES", "ocel": "OCEL 2.0"}


def _day(value: str | None) -> date | None:
    """`--since` as a date; exit 2 when it is not YYYY-MM-DD."""
    if value is None:
        return None
    try:
        return datetime.strptime(value, "%Y-%m-%d").date()
    except ValueError:
        fail("export", f"--since {value!r} is not a day; give it as YYYY-MM-DD (UTC), like 2026-11-01", code=2)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


@app.command()
def export(
    file: Annotated[Path, typer.Argument(help="The file to write (replaced whole, only once it is complete).",
                                         show_default=False)],
    log_format: Annotated[LogFormat, typer.Option(
        "--format", help="xes: an IEEE 1849 XES log, one trace per run; ocel: OCEL 2.0 JSON, runs, leads and "
                         "approvers as objects.", show_default=False)],
    since: Annotated[str | None, typer.Option(help="Only runs created on or after this day (YYYY-MM-DD, UTC).",
                                              show_default=False)] = None,
    sop: Annotated[str | None, typer.Option(help="Only runs of this SOP id.", show_default=False)] = None,
) -> None:
    """Export the SOP runs as an event log for process mining: one case per run, one event per step outcome.

    Each event has the step id as its activity, when the step ended, who answered it (an approval's approver,
    else "sopflow") and its lifecycle transition (complete, or autoskip for a skipped step). Of a lead only its
    id is exported.
    """
    from sopflow.export import cases, write_atomically
    from sopflow.export_ocel import write_ocel
    from sopflow.export_xes import write_xes
    from sopflow.store.db import transaction

    day, on_file = _day(since), sops_on_file()  # loading the SOP files records versions: before the transaction
    writer = {"xes": write_xes, "ocel": write_ocel}[log_format.value]
    with transaction() as session:
        check_sop("export", session, sop, on_file)
        try:
            tally = write_atomically(file, lambda out: writer(cases(session, sop, day), out))
        except OSError as exc:
            fail("export", f"cannot write {file} ({exc.strerror or exc}); pick a file in an existing directory "
                           "you can write to", code=2)
    of = ", ".join(sorted(tally.sops)) or "no SOP"
    say(f"Wrote {_plural(tally.runs, 'run')}, {_plural(tally.events, 'event')} of {of} to {file} "
        f"({FORMAT_NAMES[log_format.value]})")
