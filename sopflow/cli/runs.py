"""Run commands: runs (history), wake (end a wait now), outbox (emails)."""

from __future__ import annotations

from typing import Annotated

import typer

from sopflow.cli.app import app
from sopflow.cli.catalog import check_sop, sops_to_check
from sopflow.cli.output import Json, choices, emit, fail, picked, say
from sopflow.store import RUN_STATES

RunState = choices("RunState", RUN_STATES)
EmailStatus = choices("EmailStatus", ["queued", "sending", "sent", "failed", "unconfirmed"])


@app.command()
def runs(
    sop: Annotated[str | None, typer.Option(help="Only runs of this SOP id.", show_default=False)] = None,
    state: Annotated[RunState | None, typer.Option(help="Only runs in this state.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """List SOP runs, newest first, with the lead's company and each run's outcome in words."""
    from sopflow.store.db import transaction
    from sopflow.store.history import run_rows

    sops = sops_to_check(sop)  # loading the SOP files records versions: before the transaction
    with transaction() as session:
        check_sop("runs", session, sop, sops)
        rows = run_rows(session, sop, picked(state))
    columns = [("Flow run", lambda r: r["run_id"] or "(not started)"),
               ("SOP", lambda r: f"{r['sop']} v{r['sop_version'] or '?'}"), ("Company", lambda r: r["company"]),
               ("State", lambda r: r["state"]), ("Outcome", lambda r: r["outcome_text"]),
               ("Started (UTC)", lambda r: r["started"]), ("Ended (UTC)", lambda r: r["ended"])]
    emit(as_json, rows, columns, "no runs match" if sop or state else "no runs yet")


@app.command()
def wake(run_id: Annotated[str, typer.Argument(help="The flow run id, as `sopflow runs` lists it.")]) -> None:
    """End a run's wait step now: the run goes on at once instead of at its wake time."""
    from flows.waiting import wake_due_runs
    from sopflow.store import waits
    from sopflow.store.db import transaction
    from sopflow.store.models import utcnow

    with transaction() as session:
        pending = [w for w, run in waits.pending(session) if run.flow_run_id == run_id]
        for wait in pending:
            wait.wake_at = min(wait.wake_at, utcnow())
    if not pending:
        fail("wake", f"flow run {run_id} is not waiting; `sopflow runs --state waiting` lists the runs that are")
    woken = wake_due_runs()
    say(f"woke {run_id}" if run_id in woken else f"{run_id} is due; `sopflow up` resumes it within seconds")


@app.command()
def outbox(
    status: Annotated[EmailStatus | None, typer.Option(help="Only emails in this status.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """List emails the SOPs queued, newest first: to whom, subject, delivery status, attempts and last error."""
    from sopflow.store.db import transaction
    from sopflow.store.history import outbox_rows

    with transaction() as session:
        rows = outbox_rows(session, picked(status))
    columns = [("Lead", lambda r: r["lead_name"]), ("Company", lambda r: r["company"]), ("To", lambda r: r["to"]),
               ("Subject", lambda r: r["subject"]), ("Status", lambda r: r["status"]),
               ("Attempts", lambda r: r["attempts"]), ("Sent (UTC)", lambda r: r["sent_at"]),
               ("Last error", lambda r: r["last_error"])]
    emit(as_json, rows, columns, f"no {picked(status)} emails" if status else "no emails queued yet")
