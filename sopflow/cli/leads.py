"""Lead commands: lead add, lead engage, lead show, leads, leads import."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, get_args

import pydantic
import typer
from rich.text import Text

from sopflow.cli.app import SETTINGS, app, lead_app
from sopflow.cli.output import Column, Json, Row, choices, emit, fail, picked, say, print_json, show, table, when
from sopflow.forms import shown
from sopflow.schema import LeadStatus
from sopflow.scoring import ENGAGEMENT_KINDS

if TYPE_CHECKING:
    from sopflow.lead_import import Progress

Status = choices("Status", get_args(LeadStatus))
Event = choices("Event", ENGAGEMENT_KINDS)
leads_app = typer.Typer(rich_markup_mode="markdown", context_settings=SETTINGS)
app.add_typer(leads_app, name="leads")


def _text(help: str) -> Any:
    return typer.Option(help=help, show_default=False)


@lead_app.command("add")
def lead_add(
    email: Annotated[str, typer.Option(help="The lead's email address; a lead is stored once per address.")],
    name: Annotated[str | None, _text("Full name.")] = None,
    company: Annotated[str | None, _text("Company name.")] = None,
    title: Annotated[str | None, _text("Job title (scoring reads it).")] = None,
    employees: Annotated[int | None, _text("Number of employees at the company (scoring reads it).")] = None,
    industry: Annotated[str | None, _text("Industry, e.g. software (scoring reads it).")] = None,
    source: Annotated[str | None, _text("Where the lead came from, e.g. website or referral.")] = None,
    do_not_contact: Annotated[bool, typer.Option("--do-not-contact", help="Never email this lead.")] = False,
    as_json: Json = False,
) -> None:
    """Store a lead and start every SOP that starts on a new lead, once per SOP."""
    from sopflow.leads import LeadIn
    from sopflow.services.starting import submit_lead

    given = {"email": email, "name": name, "company": company, "title": title, "employees": employees,
             "industry": industry, "source": source, "do_not_contact": do_not_contact or None}
    try:
        lead = LeadIn.model_validate({k: v for k, v in given.items() if v is not None})
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            print(f"sopflow lead add: --{str(err['loc'][0]).replace('_', '-')}: {err['msg']}", file=sys.stderr)
        raise typer.Exit(2) from None
    outcome = submit_lead(lead)
    if as_json:
        print_json(outcome)
        return
    started = ", ".join(f"{r['sop']} (flow run {r['flow_run_id']})" for r in outcome["runs"]) or "none"
    say(f"lead {outcome['id']} {'added' if outcome['created'] else 'already known'}; SOP runs: {started}")
    if outcome.get("not_started"):
        say(outcome["not_started"])


@lead_app.command("engage")
def lead_engage(
    lead_id: Annotated[str, typer.Argument(help="The lead's id, as `sopflow lead add` or `sopflow leads` prints it.")],
    event: Annotated[Event, typer.Option(help="What the lead did; scoring counts recent events.")],
    as_json: Json = False,
) -> None:
    """Record that a lead opened an email, replied, met or visited; the next scoring counts it."""
    from sopflow.store import engagement
    from sopflow.store.db import transaction

    try:
        with transaction() as session:
            found = engagement.record(session, lead_id, event.value, source="cli")
            row = {"id": found.id, "lead_id": found.lead_id, "event": found.kind, "occurred_at": found.occurred_at}
    except LookupError:
        fail("lead engage", f"no lead has id {lead_id!r}; use the id `sopflow lead add` or `sopflow leads` printed")
    if as_json:
        print_json(row)
    else:
        say(f"recorded {row['event']} for lead {row['lead_id']}; the next scoring counts it")


@leads_app.callback(invoke_without_command=True)
def leads(
    context: typer.Context,
    status: Annotated[Status | None, typer.Option(help="Only leads with this status.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """List leads, newest first: id, name, company, status, score and grade (`sopflow leads import` adds many)."""
    if context.invoked_subcommand:
        return
    from sopflow.store.db import transaction
    from sopflow.store.history import lead_rows

    with transaction() as session:
        rows = lead_rows(session, picked(status))
    columns = [("Lead", lambda r: r["id"]), ("Name", lambda r: r["name"]), ("Company", lambda r: r["company"]),
               ("Status", lambda r: r["status"]), ("Score", lambda r: r["score"]), ("Grade", lambda r: r["grade"]),
               ("Created (UTC)", lambda r: r["created_at"])]
    emit(as_json, rows, columns, f"no leads with status {picked(status)}" if status else "no leads yet")


@leads_app.command("import")
def leads_import(
    file: Annotated[Path, typer.Argument(help="A UTF-8 CSV file: a header naming the columns (email at least), "
                                              "then one lead per row.", show_default=False)],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check every row and count what would be imported; "
                                                            "write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary and every problem as JSON.")] = False,
) -> None:
    """Import leads from a CSV file; each new lead claims the runs of the SOPs that start on a new lead (a stored
    one, those of SOPs added since it came).

    Columns: email, name, company, title, employees, industry, source, do_not_contact (case, spaces, - and _
    do not matter); others are ignored. Bad rows are reported as FILE:LINE: column COLUMN: reason and the
    good ones imported. Exit status 0 when every row was imported or a duplicate, 1 when some were
    rejected, 2 when the file cannot be used. The dispatcher of `sopflow up` starts the claimed runs.
    """
    from sopflow.catalog import sops_started_by
    from sopflow.lead_import import UnusableFile, import_leads

    try:
        with _progress() as progress:
            summary = import_leads(file, sops_started_by("new_lead"), dry_run, progress=progress)
    except UnusableFile as exc:
        fail("leads import", str(exc), 2)
    if as_json:
        print_json({"file": str(file), **summary.as_json()})
    else:
        for problem in summary.problems:
            print(problem.text(file), file=sys.stderr)
        say(summary.sentence())
    raise typer.Exit(summary.exit_code)


@contextmanager
def _progress() -> Iterator[Progress | None]:
    """A progress bar on stderr (lines read of the file's lines) when stderr is a terminal, else nothing."""
    if not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(TextColumn("lines"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
             console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("import", total=None)
        yield lambda done, total: bar.update(task, completed=done, total=total)


@lead_app.command("show")
def lead_show(
    lead_id: Annotated[str, typer.Argument(help="The lead's id, as `sopflow leads` lists it.")],
    as_json: Json = False,
) -> None:
    """Show everything that happened to a lead.

    Its score and why, each SOP run step by step, who decided what and when, and which emails were sent
    or skipped and why.
    """
    from sopflow.store.db import transaction
    from sopflow.store.history import lead_history

    with transaction() as session:
        history = lead_history(session, lead_id)
    if history is None:
        fail("lead show", f"no lead has id {lead_id!r}; `sopflow leads` lists every lead's id")
    if as_json:
        print_json(history)
    else:
        show(*_history_parts(history))


def _history_parts(history: Row) -> list[Any]:
    lead, score = history["lead"], history["score"]
    who = f"{shown(lead['name'])}, {shown(lead['title'])} at {shown(lead['company'])}"
    facts = [f"lead {lead['id']}", f"status {lead['status']}", f"owner {shown(lead['owner'])}",
             f"{shown(lead['employees'])} employees", shown(lead["industry"]), f"source {shown(lead['source'])}",
             f"created {when(lead['created_at'])} UTC"]
    if lead["do_not_contact"]:
        facts.append("do not contact")
    if lead["unsubscribed_at"]:
        facts.append(f"unsubscribed {when(lead['unsubscribed_at'])} UTC")
    parts: list[Any] = [Text(who, style="bold"), Text(" · ".join(facts))]
    if score:
        parts.append(_score_table(score))
    for run in history["runs"]:
        title = (f"{run['sop']} v{run['sop_version'] or '?'}: {run['outcome_text']} "
                 f"(flow run {run['run_id'] or 'not started'}, started {when(run['started'])})")
        parts.append(table(run["steps"], [
            ("Step", lambda s: s["step"]), ("Kind", lambda s: s["kind"]), ("Status", lambda s: s["status"]),
            ("What happened", lambda s: s["summary"]), ("Ended (UTC)", lambda s: s["ended_at"])], title=title))
    if not history["runs"]:
        parts += [Text(""), Text("No SOP runs yet.")]
    parts.append(_section("Decisions", history["decisions"], "nobody has been asked yet", [
        ("SOP / step", lambda d: f"{d['sop']} / {d['step']}"), ("Ask", lambda d: d["ask"] + 1),
        ("Decision", lambda d: d["decision"] or "waiting"), ("By", lambda d: d["approver"]),
        ("Accepted", lambda d: None if d["accepted"] is None else shown(d["accepted"])),
        ("Asked (UTC)", lambda d: d["asked_at"]), ("Answered (UTC)", lambda d: d["answered_at"]),
        ("Notes / refusal", lambda d: d["refusal"] or d["notes"])]))
    parts.append(_section("Emails", history["emails"], "none sent or skipped", [
        ("SOP / step", lambda e: f"{e['sop']} / {e['step']}"), ("Status", lambda e: e["status"]),
        ("To", lambda e: e["to"]), ("Subject", lambda e: e["subject"]), ("Attempts", lambda e: e["attempts"]),
        ("Sent (UTC)", lambda e: e["sent_at"]), ("Why / error", lambda e: e["reason"])]))
    return parts


def _section(title: str, rows: list[Row], empty: str, columns: list[Column]) -> Any:
    return table(rows, columns, title) if rows else Text(f"\n{title}: {empty}.")


def _score_table(score: Row) -> Any:
    scored_by = score["scored_by"]
    title = f"Score {shown(score['score'])} (grade {shown(score['grade'])}, stage {shown(score['stage'])})"
    if scored_by:
        title += f": breakdown from {scored_by['sop']} / {scored_by['step']} at {when(scored_by['at'])} UTC"
        if scored_by["score"] != score["score"]:
            title += f", which scored {scored_by['score']} (rescored since)"
    rows = score["breakdown"] or [{"rule": "no rule matched", "group": None, "points": 0}]
    return table(rows, [("Rule", lambda b: b["rule"]), ("Group", lambda b: b.get("group")),
                        ("Points", lambda b: f"{b['points']:+d}")], title=title)

