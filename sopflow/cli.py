"""The `sopflow` command line."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pydantic

from sopflow import settings
from sopflow.errors import SopInvalid


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _emit(args: argparse.Namespace, rows: Any, lines: list[str]) -> None:
    print(json.dumps(rows, indent=2) if args.json else "\n".join(lines))


def cmd_validate(args: argparse.Namespace) -> int:
    from sopflow.catalog import validate

    paths = [Path(p) for p in args.paths] or [settings.sop_dir()]
    loaded, errors = validate(paths)
    for error in errors:
        print(error, file=sys.stderr)
    if not errors:
        print(f"{len(loaded)} SOP(s) valid: {', '.join(item.sop.id for item in loaded)}")
    return 1 if errors or not loaded else 0


def cmd_schema(args: argparse.Namespace) -> int:
    from sopflow.schema_file import SCHEMA_FILE, schema_text

    if args.write:
        SCHEMA_FILE.write_text(schema_text())
        print(f"wrote {SCHEMA_FILE}")
    else:
        print(schema_text(), end="")
    return 0


def cmd_lead_add(args: argparse.Namespace) -> int:
    from sopflow.leads import LeadIn
    from sopflow.services.starting import submit_lead

    names = ("email", "name", "company", "title", "employees", "industry", "source", "do_not_contact")
    fields = {k: getattr(args, k) for k in names}
    try:
        lead = LeadIn.model_validate({k: v for k, v in fields.items() if v is not None})
    except pydantic.ValidationError as exc:
        for err in exc.errors():
            print(f"sopflow lead add: --{err['loc'][0]}: {err['msg']}", file=sys.stderr)
        return 2
    outcome = submit_lead(lead)
    started = ", ".join(f"{r['sop']} (flow run {r['flow_run_id']})" for r in outcome["runs"]) or "none"
    verb = "added" if outcome["created"] else "already known"
    _emit(args, outcome, [f"lead {outcome['id']} {verb}; SOP runs: {started}", *filter(None, [outcome.get("not_started")])])
    return 0


def cmd_lead_engage(args: argparse.Namespace) -> int:
    from sopflow.store import engagement
    from sopflow.store.db import transaction

    try:
        with transaction() as session:
            event = engagement.record(session, args.lead_id, args.event, source="cli")
            row = {"id": event.id, "lead_id": event.lead_id, "event": event.kind, "occurred_at": _iso(event.occurred_at)}
    except LookupError:
        print(f"sopflow lead engage: no lead has id {args.lead_id!r}; use the id `sopflow lead add` printed",
              file=sys.stderr)
        return 1
    _emit(args, row, [f"recorded {row['event']} for lead {row['lead_id']}; the next scoring counts it"])
    return 0


def cmd_approvals(args: argparse.Namespace) -> int:
    from sopflow.store import approvals
    from sopflow.store.db import transaction

    base = settings.ui_url()
    with transaction() as session:
        rows = [
            {
                "run_id": run.flow_run_id, "sop": run.sop_id, "step": ask.step_id, "lead_id": run.lead_id,
                "role": ask.role, "prompt": ask.prompt, "ask": ask.ask,
                "waiting_since": _iso(ask.asked_at), "due_by": _iso(ask.due_by),
                "url": f"{base}/runs/flow-run/{run.flow_run_id}" if base else None,
            }
            for ask, run in approvals.waiting(session)
        ]
    lines = [f"{r['run_id']}  {r['sop']}/{r['step']}  ({r['role']})  due {r['due_by'] or '-'}  {r['url'] or ''}" for r in rows]
    _emit(args, rows, lines or ["no approvals waiting"])
    return 0


def cmd_approve(args: argparse.Namespace) -> int:
    import httpx
    from prefect.exceptions import PrefectException
    from prefect.flow_runs import resume_flow_run

    from sopflow.services.connection import prefect_api
    from sopflow.store.db import transaction
    from sopflow.store.models import Approval, SopRun
    from sqlalchemy import select

    with transaction() as session:
        waiting = session.execute(
            select(Approval, SopRun).join(SopRun, SopRun.id == Approval.sop_run_id)
            .where(SopRun.flow_run_id == args.run_id, Approval.answered_at.is_(None))
        ).first()
    if waiting is None:
        print(f"sopflow approve: flow run {args.run_id} has no approval waiting; see `sopflow approvals`", file=sys.stderr)
        return 1
    ask, run = waiting
    from sopflow.catalog import load_all
    from tasks.approval import roster_name

    roster = load_all()[run.sop_id].sop.roles[ask.role]
    if roster_name(roster, args.approver) is None:
        print(f"note: {args.approver!r} is not on the {ask.role} roster ({', '.join(roster)}); "
              "the answer is recorded and the step asks again", file=sys.stderr)
    decision = "reject" if args.reject else "approve"
    answer = {**_parse_inputs(args.input), "decision": decision, "approver": args.approver, "notes": args.notes}
    try:
        with prefect_api():
            resume_flow_run(args.run_id, run_input=answer, _sync=True)  # sync even inside an event loop
    except (PrefectException, httpx.HTTPError) as exc:
        print(f"sopflow approve: could not resume flow run {args.run_id}: {exc}", file=sys.stderr)
        return 1
    print(f"{decision}d {run.sop_id}/{ask.step_id} as {args.approver}; the run continues")
    return 0


def _parse_inputs(pairs: list[str]) -> dict[str, Any]:
    """`NAME=VALUE` pairs; values read as JSON when they are (12, true), else as text."""
    values: dict[str, Any] = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep:
            raise SystemExit(f"sopflow approve: --input {pair!r} must look like NAME=VALUE")
        try:
            values[name.strip()] = json.loads(raw)
        except json.JSONDecodeError:
            values[name.strip()] = raw
    return values


def cmd_wake(args: argparse.Namespace) -> int:
    from flows.waiting import wake_due_runs
    from sopflow.services.connection import prefect_api
    from sopflow.store import waits
    from sopflow.store.db import transaction
    from sopflow.store.models import utcnow

    with transaction() as session:
        pending = [w for w, run in waits.pending(session) if run.flow_run_id == args.run_id]
        for wait in pending:
            wait.wake_at = min(wait.wake_at, utcnow())
    if not pending:
        print(f"sopflow wake: flow run {args.run_id} is not waiting; see `sopflow runs`", file=sys.stderr)
        return 1
    with prefect_api():
        woken = wake_due_runs()
    print(f"woke {args.run_id}" if args.run_id in woken else f"{args.run_id} is due; housekeeping resumes it shortly")
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    from sopflow.store.db import transaction
    from sopflow.store.runs import list_runs

    with transaction() as session:
        rows = [
            {
                "run_id": r.flow_run_id, "sop_run_id": r.id, "sop": r.sop_id, "sop_version": r.sop_version,
                "lead_id": r.lead_id, "state": r.state, "outcome": r.outcome,
                "started": _iso(r.started_at), "ended": _iso(r.ended_at),
            }
            for r in list_runs(session, args.sop)
        ]
    lines = [f"{r['run_id'] or '(not started)'}  {r['sop']} v{r['sop_version'] or '?'}  {r['state']:<9}  "
             f"{r['outcome'] or ''}  started {r['started'] or '-'}" for r in rows]
    _emit(args, rows, lines or ["no runs yet"])
    return 0


def cmd_up(args: argparse.Namespace) -> int:
    from deployments.up import run_up

    run_up(args.port, args.intake_port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sopflow", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="start a local Prefect server, the lead intake, and serve every SOP")
    p.add_argument("--port", type=int, default=4200, help="Prefect server and UI port (default 4200)")
    p.add_argument("--intake-port", type=int, default=8765, help="HTTP lead intake port (default 8765)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("validate", help="check SOP files; prints FILE:LINE: FIELD: reason per error")
    p.add_argument("paths", nargs="*", help="SOP files or directories (default: the SOP directory)")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("schema", help="print the SOP JSON schema")
    p.add_argument("--write", action="store_true", help="write it to sop_definitions/sop.schema.json")
    p.set_defaults(func=cmd_schema)

    lead = sub.add_parser("lead", help="leads").add_subparsers(dest="lead_command", required=True)
    p = lead.add_parser("add", help="store a lead and start every new-lead SOP for it, once")
    p.add_argument("--email", required=True)
    for name in ("name", "company", "title", "industry", "source"):
        p.add_argument(f"--{name}")
    p.add_argument("--employees", type=int)
    p.add_argument("--do-not-contact", action="store_true", default=None, help="never email this lead")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lead_add)
    p = lead.add_parser("engage", help="record that a lead opened an email, replied, met or visited (for scoring)")
    p.add_argument("lead_id", help="the lead's id, as `sopflow lead add` printed it")
    p.add_argument("--event", required=True, choices=("opened", "replied", "meeting", "visit"))
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_lead_engage)

    p = sub.add_parser("approvals", help="list approvals waiting for an answer")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_approvals)

    p = sub.add_parser("approve", help="answer a waiting approval")
    p.add_argument("run_id", help="the flow run id, as `sopflow approvals` lists it")
    p.add_argument("--approver", required=True, help="your name as the SOP's roster lists it")
    p.add_argument("--reject", action="store_true")
    p.add_argument("--notes", default="")
    p.add_argument("--input", action="append", default=[], metavar="NAME=VALUE",
                   help="a value the step's form asks for (repeatable), e.g. --input discount_percent=12")
    p.set_defaults(func=cmd_approve)

    p = sub.add_parser("wake", help="end a run's wait now (the run goes on at once)")
    p.add_argument("run_id", help="the flow run id, as `sopflow runs` lists it")
    p.set_defaults(func=cmd_wake)

    p = sub.add_parser("runs", help="list SOP runs")
    p.add_argument("--sop", help="only this SOP id")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_runs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except SopInvalid as exc:
        print(exc, file=sys.stderr)
        print("sopflow: fix the SOP files above (see `sopflow validate`)", file=sys.stderr)
        return 1
    except RuntimeError as exc:  # PrefectUnavailable, a server that would not start, a run not paused
        print(f"sopflow {args.command}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
