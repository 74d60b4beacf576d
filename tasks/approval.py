"""`approval` step: ask the step's role, record every answer, accept only the roster's people."""

from __future__ import annotations

import logging
from typing import Literal

import pydantic

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.input import RunInput
from pydantic import Field
from sqlalchemy.orm import Session

from sopflow import notify
from sopflow.ask_description import describe_ask, who_may_answer
from sopflow.forms import FEEDBACK_HELP, MAX_FEEDBACK, feedback_problem, input_fields
from sopflow.roster import SOPFLOW, refusal, roster_name
from sopflow.schema import ApprovalStep
from sopflow.services import notices
from sopflow.state_messages import decided, waiting_for
from sopflow.store import approvals, runs
from sopflow.store import sla as sla_store
from sopflow.store.db import transaction
from sopflow.store.feedback import add_feedback
from sopflow.store.models import SopRun, utcnow
from tasks.records import Result, StepCall, complete, recorded, settled
from tasks.step_runs import shown

__all__ = ["ApprovalForm", "Refused", "answer", "approver_of", "ask", "form_for", "refusal", "roster_name"]

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


class Refused(Exception):
    """An answer from someone who may not answer the step; the message is the refusal, in one sentence."""


def ask(call: StepCall) -> Result:
    """The step's settled result, or the open ask: {"status": "waiting", "ask_id", "ask", "description",
    "waiting_for"}, the last the message of the run's Suspended state.

    Flow code, no task run: a waiting run calls it again each time it re-executes. A new ask's notices (emails
    with signed links, channel posts) are queued with it, once, and sent after it is stored; one that cannot go
    out now is left to housekeeping and never fails the run.
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
        who = who_may_answer(session, sop, step, call.run_id)
        runs.set_state(session, call.run_id, "waiting")
        asked = {"status": "waiting", "ask_id": open_ask.id, "ask": open_ask.ask, "description": description,
                 "waiting_for": waiting_for(who, open_ask.due_by)}
    notices.send(queued)
    return asked


def approver_of(call: StepCall, ask_id: int, form: ApprovalForm) -> str:
    """The roster's spelling of the answer's approver, who may answer the step (nothing is recorded then).

    Raises Refused when they may not, with the refused answer to ask `ask_id` recorded.
    """
    step = _step(call)
    with transaction() as session:
        who = who_may_answer(session, call.plan.sop, step, call.run_id)
        name = roster_name(who.people, form.approver) or _sopflow(session, ask_id, form)
        if name is not None:
            return name
        stored = approvals.record_answer(session, ask_id, form.decision, form.approver.strip(), form.notes,
                                         refusal(who.people, who.label, form.approver))
        runs.set_state(session, call.run_id, "running")
        reason = stored.refusal
    raise Refused(reason)  # outside the transaction, which commits the refused answer


@task(cache_policy=NO_CACHE)
def answer(call: StepCall, ask_id: int, form: ApprovalForm, approver: str) -> State:
    """Record the answer to ask `ask_id` by `approver` (as `approver_of` gave it) and complete the step; the state
    is named by the decision and says who answered when."""
    step = _step(call)
    with transaction() as session:
        done = recorded(session, call)
        if done is not None:
            return shown(done)
        stored = approvals.record_answer(session, ask_id, form.decision, approver, form.notes, None)
        runs.set_state(session, call.run_id, "running")
        _keep_feedback(session, call, stored.approver, form.feedback)
        first = approvals.previous_asks(session, call.run_id, step.id)[0]
        result = {"decision": stored.decision, "approver": stored.approver, "notes": stored.notes,
                  "asks": stored.ask + 1, **form.model_dump(include=set(step.inputs))}
        name, message = decided(stored.decision, stored.approver, stored.answered_at)
        return shown(complete(session, call, result, first.asked_at), name, message)


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
