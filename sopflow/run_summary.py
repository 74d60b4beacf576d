"""A run's summary table (step, status, who, when, outcome), as its Prefect artifact shows it: the settled steps in
plan order, then the open ask or wait.

Ids, staff names, times and outcome words only: never a lead's personal data nor free text (an approval's notes,
an email's subject, a team function's result).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from sopflow.ask_description import who_may_answer
from sopflow.plan import Plan
from sopflow.roster import SOPFLOW, Answerers
from sopflow.schema import ApprovalStep
from sopflow.state_messages import answerers_words, day_utc, utc
from sopflow.store.history import step_summary
from sopflow.store.models import Approval, OutboxEmail, StepRecord, Wait

Row = dict[str, str]
COLUMNS = ("step", "status", "who", "when", "outcome")


def outcome(record: StepRecord, email_status: str | None = None) -> str:
    """What the step came to, in a few words: "approve", "skipped: <reason>", "sent", "scored 90 (grade A, ...)"."""
    result = record.result
    if record.status == "skipped":
        return f"skipped: {result.get('reason')}"
    if record.kind == "approval":
        return str(result.get("decision"))
    if record.kind == "email":
        return email_status or "queued"
    if record.kind == "webhook":
        return "delivered" if result.get("delivered") else f"not delivered (HTTP {result.get('http_status')})"
    if record.kind == "wait":
        return "woke"
    return step_summary(record) if record.kind in ("score", "update_lead") else "done"


def record_row(record: StepRecord, email_status: str | None = None) -> Row:
    approver = record.result.get("approver") if record.kind == "approval" else None
    return dict(zip(COLUMNS, (record.step_id, record.status, approver or SOPFLOW, utc(record.ended_at),
                              outcome(record, email_status))))


def ask_row(ask: Approval, who: Answerers) -> Row:
    due = f"due {day_utc(ask.due_by)}" if ask.due_by else "no deadline"
    return dict(zip(COLUMNS, (ask.step_id, "waiting", answerers_words(who), utc(ask.asked_at), due)))


def wait_row(wait: Wait) -> Row:
    return dict(zip(COLUMNS, (wait.step_id, "waiting", SOPFLOW, "", f"until {day_utc(wait.wake_at)}")))


def summary_rows(order: Mapping[str, int], records: Iterable[StepRecord], email_status: Mapping[str, str],
                 waiting: Row | None = None) -> list[Row]:
    """One row per step record in plan `order` (step id -> position), then `waiting` (the open ask or wait)."""
    ordered = sorted(records, key=lambda record: order.get(record.step_id, len(order)))
    return [record_row(record, email_status.get(record.step_id)) for record in ordered] + ([waiting] if waiting else [])


def run_summary(session: Session, plan: Plan, run_id: str) -> list[Row]:
    """The summary rows of run `run_id` of `plan`, read from the store."""
    records = session.scalars(select(StepRecord).where(StepRecord.sop_run_id == run_id))
    emails = select(OutboxEmail.step_id, OutboxEmail.status).where(OutboxEmail.sop_run_id == run_id)
    ask = session.scalar(select(Approval).where(Approval.sop_run_id == run_id, Approval.answered_at.is_(None)))
    wait = session.scalar(select(Wait).where(Wait.sop_run_id == run_id, Wait.done_at.is_(None)))
    waiting = wait_row(wait) if wait else None
    if ask is not None:
        step = plan.steps[ask.step_id].step
        assert isinstance(step, ApprovalStep)
        waiting = ask_row(ask, who_may_answer(session, plan.sop, step, run_id))
    return summary_rows(plan.order, records, dict(session.execute(emails).tuples().all()), waiting)
