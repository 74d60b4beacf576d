"""Approval commands: approvals (what waits for an answer) and approve (answer one)."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.catalog import check_name, check_sop, loaded_on_file, sops_to_check
from sopflow.cli.output import Json, emit, fail, say, waited
from sopflow.forms import FEEDBACK_HELP, input_kind, shown
from sopflow.schema import ApprovalStep, Sop

OFF_ROSTER = 3  # exit status: the answer was sent and recorded, but the step asks again


def _approval_steps(sops: dict[str, Sop], sop_id: str | None) -> list[str]:
    return [step.id for sop in sops.values() if sop_id in (None, sop.id)
            for step in sop.steps if isinstance(step, ApprovalStep)]


@app.command()
def approvals(
    sop: Annotated[str | None, typer.Option(help="Only asks of this SOP id.", show_default=False)] = None,
    step: Annotated[str | None, typer.Option(help="Only asks of this approval step id.", show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """List approvals waiting for an answer, oldest first, with the lead, how long each has waited and its link."""
    from sopflow.store import approvals as asks
    from sopflow.store.db import transaction
    from sopflow.store.history import waiting_rows

    sops, base = sops_to_check(sop, step), settings.ui_url()
    with transaction() as session:
        check_sop("approvals", session, sop, sops)
        if step is not None:
            steps = set(_approval_steps(sops, sop)) | set(asks.step_ids(session, sop))
            check_name("approvals", "approval step", step, steps,
                       "`sopflow approvals` without --step lists the waiting ones")
        rows = waiting_rows(session, sop, step)
    for row in rows:
        row["waited"] = waited(row["waiting_since"])
        row["url"] = f"{base}/runs/flow-run/{row['run_id']}" if base else None
    columns = [("Flow run", lambda r: r["run_id"]), ("SOP / step", lambda r: f"{r['sop']} / {r['step']}"),
               ("Lead", lambda r: r["lead_name"]), ("Company", lambda r: r["company"]), ("Role", lambda r: r["role"]),
               ("Waited", lambda r: r["waited"]), ("Due by (UTC)", lambda r: r["due_by"]), ("Link", lambda r: r["url"])]
    emit(as_json, rows, columns, "no approvals waiting")


def send_answer(flow_run_id: str, answer: dict[str, Any]) -> None:
    """Resume the paused flow run with `answer` as its form's input (the run records it); exit 1 when it cannot be."""
    from sopflow.services import answering

    try:
        answering.send_answer(flow_run_id, answer)
    except answering.ResumeFailed as exc:
        fail("approve", str(exc))


def _given(pairs: list[str]) -> tuple[dict[str, str], list[str]]:
    """`NAME=VALUE` pairs as typed, and the pairs that are not of that shape."""
    given, malformed = {}, []
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if sep and name.strip():
            given[name.strip()] = value
        else:
            malformed.append(pair)
    return given, malformed


@app.command()
def approve(
    run_id: Annotated[str, typer.Argument(help="The flow run id, as `sopflow approvals` lists it.")],
    approver: Annotated[str, typer.Option(help="Your name, as the SOP's roster lists it.")],
    reject: Annotated[bool, typer.Option("--reject", help="Reject instead of approve; the run follows the "
                                                        "step's on_reject.")] = False,
    notes: Annotated[str, typer.Option(help="Why; what you checked; anything the next person needs.")] = "",
    inputs: Annotated[list[str] | None, typer.Option(
        "--input", metavar="NAME=VALUE", show_default=False,
        help="A value the step's form asks for (repeat for each), e.g. --input discount_percent=12.")] = None,
    feedback: Annotated[str, typer.Option(help=FEEDBACK_HELP, show_default=False)] = "",
) -> None:
    """Answer a waiting approval.

    Every input the step's form asks for, and the feedback, is checked before anything is sent. When the approver
    is not on the step's roster the answer is still recorded (its feedback is not), the step asks again, and the
    command exits 3.
    """
    from sopflow.ask_description import who_may_answer
    from sopflow.roster import roster_name
    from sopflow.services.answering import answer_for, approval_step
    from sopflow.store import approvals as asks
    from sopflow.store.db import transaction
    from sopflow.store.history import DECIDED
    from sopflow.versioning import followed_by_run

    on_file = loaded_on_file()
    with transaction() as session:
        found = asks.waiting(session, flow_run_id=run_id)
        if not found:
            fail("approve", f"flow run {run_id} has no approval waiting; `sopflow approvals` lists those that do")
        ask, run = found[0]
        current = on_file.get(run.sop_id)  # the run follows the version it started on, which may not be the file's
        sop = followed_by_run(session, current, run.lead_id, warn_unstored=False).sop if current else None
        step = approval_step(sop, ask.step_id)
        who = who_may_answer(session, sop, step, run.id) if sop and step else None
    if step is None or who is None:
        fail("approve", f"SOP {run.sop_id} in {settings.sop_dir()} no longer has approval step {ask.step_id}; "
                        "fix the SOP file (see `sopflow validate`) and answer again")
    given, malformed = _given(inputs or [])
    decision = "reject" if reject else "approve"
    answer, problems = answer_for(step, decision, approver, notes, given, feedback)
    for pair in malformed:
        print(f"sopflow approve: --input {pair!r} must look like NAME=VALUE", file=sys.stderr)
    unfit = [reason for name, reason in problems if name == "feedback"]  # reserved: never an input's name
    for name, reason in problems:
        if name != "feedback":
            label = f" ({step.inputs[name].label}, {input_kind(step.inputs[name])})" if name in step.inputs else ""
            print(f"sopflow approve: --input {name}{label}: {reason}", file=sys.stderr)
    if malformed or len(problems) > len(unfit):
        fail("approve", "nothing was sent; fix the inputs above and answer again", code=2)
    if unfit:
        fail("approve", f"--feedback: {unfit[0]}; nothing was sent", code=2)
    send_answer(run_id, answer)
    name = roster_name(who.people, approver)
    if name is None:
        fail("approve", f"{approver!r} is not on the {who.label} roster ({', '.join(who.people)}); the answer is "
                        f"recorded{' (its feedback is not)' if feedback else ''} and {ask.step_id} asks again, "
                        "so ask one of them to answer", code=OFF_ROSTER)
    values = {key: value for key, value in answer.items() if key in step.inputs}
    recorded = "".join(f", {key}: {shown(value)}" for key, value in values.items())
    kept = " and its feedback is kept" if feedback else ""
    say(f"{DECIDED[decision]} {run.sop_id}/{ask.step_id} as {name}{recorded}; the run continues{kept}")
