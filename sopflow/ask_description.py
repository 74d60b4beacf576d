"""An approval ask as the person answering reads it: the same Markdown in the Prefect UI's form and on its link page."""

from __future__ import annotations

from sqlalchemy.orm import Session

from sopflow.forms import approval_description
from sopflow.roster import Answerers, answerers
from sopflow.run_context import run_context
from sopflow.schema import ApprovalStep, Sop
from sopflow.sla import plan_words
from sopflow.store import approvals
from sopflow.store import sla as sla_store
from sopflow.store.models import Approval


def who_may_answer(session: Session, sop: Sop, step: ApprovalStep, run_id: str) -> Answerers:
    """The step's owner role and every role its asks were escalated to, with their people."""
    return answerers(sop, step.owner, sla_store.escalated_roles(session, run_id, step.id))


def describe_ask(session: Session, sop: Sop, step: ApprovalStep, ask: Approval, lead_id: str) -> str:
    """The form's Markdown for `ask`: prompt, due time, who may answer, what happens when overdue, the lead, earlier
    answers and refusals, the checklist."""
    refusals = [earlier.refusal for earlier in approvals.previous_asks(session, ask.sop_run_id, step.id)
                if earlier.refusal and earlier.ask < ask.ask]
    who = who_may_answer(session, sop, step, ask.sop_run_id)
    return approval_description(step, run_context(session, sop, ask.sop_run_id, lead_id), who.people, ask.due_by,
                                refusals, role=who.label, overdue=plan_words(step, sop.people))
