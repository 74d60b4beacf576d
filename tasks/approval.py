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

from sopflow import notify
from sopflow.ask_description import describe_ask, who_may_answer
from sopflow.forms import FEEDBACK_HELP, MAX_FEEDBACK, feedback_problem, input_fields
from sopflow.roster import SOPFLOW, refusal, roster_name
from sopflow.schema import ApprovalStep
from sopflow.services import notices
from sopflow.store import approvals, runs
from sopflow.store import sla as sla_store
from sopflow.store.db import transaction
from sopflow.store.feedback import add_feedback
from sopflow.store.models import SopRun, utcnow
from tasks.records import Result, StepCall, complete, settled

__all__ = ["ApprovalForm", "answer", "ask", "form_for", "refusal", "roster_name"]

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
    """The step's settled result, or the open ask: {"status": "waiting", "ask_id", "ask", "description"}.

    A new ask's notices (emails with signed links, channel posts) are queued with it, once, and sent after it
    is stored; one that cannot go out now is left to housekeeping and never fails the run.
    """
    step = _step(call)
    with transaction() as session:
        done = settled(session, call)
        if done is not None:
            return done
        earlier = approvals.previous_asks(session, call.run_id, step.id)
        due_within = call.planned.due_within
        due_by = earlier[0].due_by if earlier else (utcnow() + due_within if due_within else None)
        open_ask = approvals.open_ask(session, call.run_id, step.id, step.owner, step.prompt, due_by)
        sop = call.plan.sop
        queued = notify.queue(session, sop, step, open_ask, notify.on_ask(session, sop, step, open_ask))
        description = describe_ask(session, sop, step, open_ask, call.lead_id)
        runs.set_state(session, call.run_id, "waiting")
        asked = {"status": "waiting", "ask_id": open_ask.id, "ask": open_ask.ask, "description": description}
    notices.send(queued)
    return asked


@task(cache_policy=NO_CACHE)
def answer(call: StepCall, ask_id: int, form: ApprovalForm) -> Result:
    """Record the answer to ask `ask_id`; complete the step when the approver is on the roster."""
    step = _step(call)
    with transaction() as session:
        record = runs.step_record(session, call.run_id, step.id)
        if record is not None:
            return {"status": record.status, **record.result}
        who = who_may_answer(session, call.plan.sop, step, call.run_id)
        name = roster_name(who.people, form.approver) or _sopflow(session, ask_id, form)
        stored = approvals.record_answer(
            session, ask_id, form.decision, name or form.approver.strip(), form.notes,
            None if name else refusal(who.people, who.label, form.approver),
        )
        runs.set_state(session, call.run_id, "running")
        if not stored.accepted:
            return {"status": "refused", "reason": stored.refusal}
        _keep_feedback(session, call, stored.approver, form.feedback)
        first = approvals.previous_asks(session, call.run_id, step.id)[0]
        result = {"decision": stored.decision, "approver": stored.approver, "notes": stored.notes,
                  "asks": stored.ask + 1, **form.model_dump(include=set(step.inputs))}
        return complete(session, call, result, first.asked_at)


def _sopflow(session: Session, ask_id: int, form: ApprovalForm) -> str | None:
    """SOPFLOW when the answer is the decision an overdue `decide` action of this ask claimed, else None."""
    claimed = sla_store.sopflow_decision(session, ask_id)
    return SOPFLOW if form.approver.strip() == SOPFLOW and claimed == form.decision else None


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
