"""`approval` step: ask the step's role, record every answer, accept only the roster's people."""

from __future__ import annotations

import logging
from typing import Literal

import pydantic

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field
from sqlalchemy.orm import Session

from sopflow.forms import FEEDBACK_HELP, MAX_FEEDBACK, approval_description, feedback_problem, input_fields
from sopflow.schema import ApprovalStep
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.feedback import add_feedback
from sopflow.store.models import SopRun, utcnow
from tasks.records import Result, StepCall, complete, settled, step_context

logger = logging.getLogger(__name__)


class ApprovalForm(RunInput):
    """The resume form in the Prefect UI."""

    decision: Literal["approve", "reject"] = Field(description="Approve to go on; reject follows the SOP's on_reject.")
    approver: str = Field(min_length=1, description="Your name, as the SOP's roster lists it.")
    notes: str = Field(default="", description="Why; what you checked; anything the next person needs.")
    feedback: str = Field(default="", max_length=MAX_FEEDBACK, description=FEEDBACK_HELP)


def form_for(step: ApprovalStep) -> type[ApprovalForm]:
    """The step's resume form: decision, approver and notes, plus the step's own typed inputs."""
    if not step.inputs:
        return ApprovalForm
    return pydantic.create_model("ApprovalForm", __base__=ApprovalForm, **input_fields(step))


def _step(call: StepCall) -> ApprovalStep:
    step = call.planned.step
    assert isinstance(step, ApprovalStep)
    return step


@task(cache_policy=NO_CACHE)
def ask(call: StepCall) -> Result:
    """The step's settled result, or the open ask: {"status": "waiting", "ask_id", "ask", "description"}."""
    step = _step(call)
    with transaction() as session:
        done = settled(session, call)
        if done is not None:
            return done
        earlier = approvals.previous_asks(session, call.run_id, step.id)
        due_within = call.planned.due_within
        due_by = earlier[0].due_by if earlier else (utcnow() + due_within if due_within else None)
        open_ask = approvals.open_ask(session, call.run_id, step.id, step.owner, step.prompt, due_by)
        description = approval_description(
            step, step_context(session, call), call.plan.sop.roles[step.owner], open_ask.due_by,
            [a.refusal for a in earlier if a.refusal],
        )
        runs.set_state(session, call.run_id, "waiting")
        return {"status": "waiting", "ask_id": open_ask.id, "ask": open_ask.ask, "description": description}


def roster_name(roster: list[str], approver: str) -> str | None:
    """The roster's spelling of `approver` (matched ignoring case), or None when not on it."""
    return next((person for person in roster if person.casefold() == approver.strip().casefold()), None)


def refusal(roster: list[str], role: str, approver: str) -> str:
    return f"{approver!r} is not on the {role} roster ({', '.join(roster)}); ask one of them to answer"


@task(cache_policy=NO_CACHE)
def answer(call: StepCall, ask_id: int, form: ApprovalForm) -> Result:
    """Record the answer to ask `ask_id`; complete the step when the approver is on the roster."""
    step = _step(call)
    with transaction() as session:
        record = runs.step_record(session, call.run_id, step.id)
        if record is not None:
            return {"status": record.status, **record.result}
        roster = call.plan.sop.roles[step.owner]
        name = roster_name(roster, form.approver)
        stored = approvals.record_answer(
            session, ask_id, form.decision, name or form.approver.strip(), form.notes,
            None if name else refusal(roster, step.owner, form.approver),
        )
        runs.set_state(session, call.run_id, "running")
        if not stored.accepted:
            return {"status": "refused", "reason": stored.refusal}
        _keep_feedback(session, call, stored.approver, form.feedback)
        first = approvals.previous_asks(session, call.run_id, step.id)[0]
        result = {"decision": stored.decision, "approver": stored.approver, "notes": stored.notes,
                  "asks": stored.ask + 1, **form.model_dump(include=set(step.inputs))}
        return complete(session, call, result, first.asked_at)


def _keep_feedback(session: Session, call: StepCall, approver: str | None, text: str) -> None:
    """Store an accepted answer's feedback against the run's SOP version and the step; unfit text is left out.

    The text goes to the store only: never to the log, the step's result or the flow's parameters.
    """
    if not text.strip():
        return
    problem = feedback_problem(text)
    if problem:
        logger.warning("feedback given with the answer to %s/%s was not kept: %s",
                       call.plan.sop.id, call.step_id, problem)
        return
    run = session.get_one(SopRun, call.run_id)
    add_feedback(session, run.sop_id, run.sop_version or call.plan.version, run.sop_hash or call.plan.content_hash,
                 text, "approval", step_id=call.step_id, given_by=approver, sop_run_id=run.id)
