"""`approval` step: ask the step's role, record every answer, accept only the roster's people."""

from __future__ import annotations

from typing import Literal

import pydantic

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput
from pydantic import Field

from sopflow.forms import approval_description, input_fields
from sopflow.schema import ApprovalStep
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.models import utcnow
from tasks.records import Result, StepCall, complete, settled, step_context


class ApprovalForm(RunInput):
    """The resume form in the Prefect UI."""

    decision: Literal["approve", "reject"] = Field(description="Approve to go on; reject follows the SOP's on_reject.")
    approver: str = Field(min_length=1, description="Your name, as the SOP's roster lists it.")
    notes: str = Field(default="", description="Why; what you checked; anything the next person needs.")


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
        first = approvals.previous_asks(session, call.run_id, step.id)[0]
        result = {"decision": stored.decision, "approver": stored.approver, "notes": stored.notes,
                  "asks": stored.ask + 1, **form.model_dump(include=set(step.inputs))}
        return complete(session, call, result, first.asked_at)
