"""`sopflow audit`: every run of a window compared with the SOP version it followed; the findings are stored."""

from __future__ import annotations

import sys
from collections.abc import Collection
from datetime import datetime, timedelta, timezone
from typing import Annotated

import typer

from sopflow.cli.app import app
from sopflow.cli.catalog import check_name, loaded_on_file
from sopflow.cli.output import Json, fail, print_json, say, show, table

WINDOW_DAYS = 7


def _states_or_none(flow_run_ids: Collection[str]) -> dict[str, str]:
    """The Prefect states of the open runs' flow runs; none (and a note on stderr) when Prefect cannot be asked."""
    import httpx

    from sopflow.audit_run import prefect_states
    from sopflow.services.connection import prefect_api

    try:
        with prefect_api():
            return prefect_states(flow_run_ids)
    except (RuntimeError, httpx.HTTPError, OSError) as exc:
        print(f"sopflow audit: crashed flow runs not checked, Prefect could not be asked ({exc})", file=sys.stderr)
        return {}


@app.command()
def audit(
    since: Annotated[datetime | None, typer.Option(formats=["%Y-%m-%d"], show_default=False,
                                                   help="Audit the runs created on or after this day (UTC), "
                                                        f"YYYY-MM-DD; default: the last {WINDOW_DAYS} days.")] = None,
    sop: Annotated[str | None, typer.Option(help="Only this SOP's runs.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Audit the runs of a window, and every open one, against the SOP versions they followed, and store the audit.

    Finds required steps skipped, steps out of order, SLAs missed, approvals answered off the roster or waiting
    past due, emails without consent, failed or crashed runs and stuck runs; reports adherence per SOP, step and
    person. The weekly `sopflow-audit/weekly` run does the same and publishes artifacts.
    """
    from sopflow.audit_report import finding_rows, headline, percent
    from sopflow.audit_run import run_audit
    from sopflow.store import runs
    from sopflow.store.db import transaction

    until = datetime.now(timezone.utc)
    start = since.replace(tzinfo=timezone.utc) if since else until - timedelta(days=WINDOW_DAYS)
    if start >= until:
        fail("audit", f"--since {start:%Y-%m-%d} is not in the past; give a day before today", code=2)
    on_file = loaded_on_file()
    check_name("audit", "SOP", sop, on_file, "`sopflow sops` lists the SOPs")
    audit_id, result = run_audit(on_file, start, until, sop, read_states=_states_or_none)
    with transaction() as session:
        rows = finding_rows(result, runs.flow_runs_of(session, {f.sop_run_id for f in result.findings if f.sop_run_id}))
    if as_json:
        print_json({"audit_id": audit_id, **result.as_dict(), "findings": rows})
        return
    say(headline(result) + f" (audit {audit_id}).")
    if result.findings:
        show(table(rows, [(h, lambda r, k=k: r[k]) for h, k in (
            ("Finding", "finding"), ("SOP", "sop"), ("Flow run", "flow_run"), ("Step", "step"), ("Person", "person"),
            ("Evidence", "evidence"))], title="Findings"))
    rates = [{"name": name, **row} for name, row in result.adherence.get("sop", {}).items()]
    if rates:
        show(table(rates, [("SOP", lambda r: r["name"]), ("Runs", lambda r: r["audited"]),
                           ("Clean", lambda r: r["clean"]), ("Adherence", lambda r: percent(r["rate"]))],
                   title="Adherence per SOP"))
