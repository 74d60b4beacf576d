"""The S&OP run's tasks: open the month's plan (its figures frozen the first time, its artifacts published when this
run takes it), and record each role's sign-off when someone on that role's roster answers."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from prefect import get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from prefect.runtime import flow_run
from pydantic import Field

from sopflow import settings
from sopflow.capacity import load_current
from sopflow.errors import SopInvalid
from sopflow.snop import parse_month, plan_figures
from sopflow.snop_report import months_over, over_words, plan_markdown, sign_off_words, table_rows
from sopflow.store import snop as plans
from sopflow.store.db import transaction
from sopflow.store.models import SnopPlan
from sopflow.text import notes_problem
from tasks.approval import refusal, roster_name

MAX_NOTES = 2000
DECISION_HELP = "approve: the plan stands as shown; needs_changes: say in the notes what must change."
View = dict[str, Any]
STATE_WORDS = {"open": "open", "signed": "signed off", "needs_changes": "sent back for changes"}


class SignOffForm(RunInput):
    """The S&OP sign-off's resume form in the Prefect UI."""

    signer: str = Field(min_length=1, max_length=200, description="Your name, as the capacity file's roster lists it.")
    decision: Literal["approve", "needs_changes"] = Field(description=DECISION_HELP)
    notes: str = Field(default="", max_length=MAX_NOTES,
                       description="What you checked; for needs_changes, what must change (required then).")


def plan_view(plan: SnopPlan) -> View:
    """What the run needs of `plan`: its figures as Markdown, who signed and who may, and the sign-off in words."""
    figures = plan.figures or {}
    signed = {role: plans.signed(plan, role) for role in plans.ROLES}
    return {"status": "open" if plan.state == "open" else "done", "plan_id": plan.id, "month": plan.month,
            "state": plan.state, "signed": signed, "roster": figures["sign_off"], "over": over_words(figures),
            "markdown": plan_markdown(figures), "words": sign_off_words(plan.month, signed, months_over(figures))}


def _ended(flow_run_id: str) -> bool:
    """Whether flow run `flow_run_id` has ended (completed, failed, cancelled, crashed) or is gone."""
    from prefect.client.orchestration import get_client
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            state = client.read_flow_run(UUID(flow_run_id)).state
        except ObjectNotFound:
            return True
    return state is not None and state.is_final()


def hold_plan(month: str, run_id: str) -> tuple[SnopPlan | None, bool, str]:
    """The plan this run holds (found by run, else claimed for `month`, else taken over from a run that ended
    without its sign-off) and whether this run took it just now; (None, False, why) when another run holds it."""
    with transaction() as session:
        plan = plans.plan_of_run(session, run_id)
        if plan is not None:
            return plan, False, ""
        plan, holds = plans.claim_plan(session, month, run_id)
    if holds:
        return plan, True, ""
    holder = plan.flow_run_id or ""
    if plan.state != "open" or not _ended(holder):
        then = "answer its sign-off there" if plan.state == "open" else "a month is planned once"
        return None, False, f"S&OP {month} is {STATE_WORDS[plan.state]} in flow run {holder}; {then}"
    with transaction() as session:  # its run ended without the sign-off: this run asks again
        plan = plans.take_over(session, session.get_one(SnopPlan, plan.id), holder, run_id)
    if plan.flow_run_id != run_id:
        return None, False, f"S&OP {month} was taken over by flow run {plan.flow_run_id}; answer its sign-off there"
    return plan, True, ""


@task(cache_policy=NO_CACHE, task_run_name="plan figures")
def open_plan(month: str) -> View:
    """The month's plan for this run to sign off: its figures computed the first time, then read back; published as
    artifacts when this run takes the plan. {"status": "elsewhere" or "invalid", "reason"} when it cannot."""
    if parse_month(month) != month:
        return {"status": "invalid", "reason": f"month {month!r} is not a month; give YYYY-MM, e.g. 2026-12"}
    plan, taken, why = hold_plan(month, str(flow_run.id))
    if plan is None:
        return {"status": "elsewhere", "reason": why}
    fresh = taken or plan.figures is None  # first seen by this run: publish the artifacts
    if plan.figures is None:
        try:
            capacity, negotiation = load_current(settings.sop_dir())
        except SopInvalid as exc:
            return {"status": "invalid", "reason": f"the capacity file is not valid, fix it and retry the run: "
                                                   f"{exc.errors[0]}"}
        with transaction() as session:
            plan = session.get_one(SnopPlan, plan.id, with_for_update=True)
            if plan.figures is None:  # frozen: later runs and resumes read these
                plan.figures = plan_figures(session, capacity, [step.id for step in negotiation.sop.steps], month)
    view = plan_view(plan)
    if fresh:
        _publish(view, plan.figures or {})
    return view


def _publish(view: View, figures: dict[str, Any]) -> None:
    month = view["month"]
    create_markdown_artifact(key=f"snop-{month}", markdown=view["markdown"],
                             description=f"S&OP {month}: {months_over(figures)}")
    create_table_artifact(key=f"snop-{month}-table", table=table_rows(figures),
                          description=f"S&OP {month}: weighted demand vs capacity per month")


def sign_off_description(view: View, role: str, refusals: list[str]) -> str:
    """The sign-off form's Markdown: who may answer, the other role's answer, earlier refusals, then the plan."""
    lines = [f"### Sign off the S&OP plan of {view['month']} for {role}", "",
             f"**Who may answer ({role}):** {', '.join(view['roster'][role])} · {view['words']}"]
    lines += [f"\n> Previous answer not accepted: {reason}" for reason in refusals]
    return "\n".join([*lines, "", view["markdown"]])


def signer_problem(view: View, role: str, form: SignOffForm) -> str | None:
    """Why `form` cannot sign the plan for `role` (off the role's roster, notes unfit), or None."""
    roster = view["roster"][role]
    if roster_name(roster, form.signer) is None:
        return refusal(roster, role, form.signer)
    return notes_problem(form.notes, "needs_changes needs notes that say what must change"
                         if form.decision == "needs_changes" else None)


@task(cache_policy=NO_CACHE, task_run_name="{role} sign-off")
def sign_off(plan_id: int, role: str, form: SignOffForm) -> View:
    """Record `role`'s sign-off when the signer is on its roster and the notes fit, else say why (the run asks
    again): {"status": "refused", "reason"}. Once recorded, a repeated call returns the plan unchanged."""
    with transaction() as session:
        plan = session.get_one(SnopPlan, plan_id)
        if plans.signed(plan, role) is None:
            problem = signer_problem(plan_view(plan), role, form)
            if problem:
                get_run_logger().warning("Sign-off not accepted, asking again: %s", problem)
                return {"status": "refused", "reason": problem}
            name = roster_name((plan.figures or {})["sign_off"][role], form.signer)
            plan = plans.record_sign_off(session, plan_id, role, name or form.signer, form.decision,
                                         form.notes.strip())
        view = plan_view(plan)
    get_run_logger().info("%s", view["words"])
    return view
