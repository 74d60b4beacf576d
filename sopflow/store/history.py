"""What happened, read in one place: leads, their SOP runs, every step, decision and email.

Read-only. Rows are plain dicts with stable keys (the CLI prints them as tables or JSON);
their datetimes are timezone-aware UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sopflow.forms import shown
from sopflow.store import RUN_STATES, approvals, outbox, runs
from sopflow.store.filters import where_given
from sopflow.store.models import Approval, Lead, OutboxEmail, SopRun, StepRecord, Wait

Row = dict[str, Any]
T = TypeVar("T", StepRecord, Approval, Wait, OutboxEmail)

# What a run that ended by setting the lead's status achieved, in words.
STATUS_WORDS = {
    "new": "lead back to new", "working": "lead being worked", "nurture": "nurtured", "qualified": "qualified",
    "disqualified": "disqualified", "opportunity": "became an opportunity", "customer": "became a customer",
    "closed_lost": "closed lost",
}
DECIDED = {"approve": "approved", "reject": "rejected"}


def _by_run(rows: Iterable[T]) -> defaultdict[str, list[T]]:
    grouped: defaultdict[str, list[T]] = defaultdict(list)
    for row in rows:
        grouped[row.sop_run_id].append(row)
    return grouped


def _last_status(records: list[StepRecord]) -> str | None:
    """The lead status the run's last status-changing step set."""
    return next((r.result["status"] for r in reversed(records)
                 if r.kind == "update_lead" and r.status == "completed" and r.result.get("status")), None)


def outcome_words(run: SopRun, records: list[StepRecord], open_asks: list[Approval], waits: list[Wait]) -> str:
    """The run's outcome as a person says it: "qualified", "rejected at manager_approval, disqualified", ..."""
    if run.state == "pending":
        return "not started yet"
    if run.state == "waiting" and open_asks:
        return f"waiting for the {open_asks[0].role} at {open_asks[0].step_id}"
    if run.state == "waiting" and waits:
        return f"waiting at {waits[0].step_id} until {waits[0].wake_at:%Y-%m-%d %H:%M} UTC"
    if run.state in ("running", "waiting"):
        return f"{run.state} after {records[-1].step_id}" if records else run.state
    status = _last_status(records)
    if run.outcome != "completed":  # "rejected at <step>" or "failed at <step>: <error>"
        return f"{run.outcome}, {STATUS_WORDS.get(status, status)}" if status and run.state == "completed" else (
            run.outcome or run.state)
    if status:
        return STATUS_WORDS.get(status, f"lead {status}")
    done = [r for r in records if r.status == "completed"]
    return f"done after {done[-1].step_id}" if done else "done; every step was skipped"


def _details(session: Session, run_ids: Select[Any]) -> tuple[
    defaultdict[str, list[StepRecord]], defaultdict[str, list[Approval]], defaultdict[str, list[Wait]]
]:
    """Step records, asks (answered or not) and pending waits of the runs `run_ids` selects."""
    records = session.scalars(select(StepRecord).where(StepRecord.sop_run_id.in_(run_ids)).order_by(StepRecord.id))
    asks = session.scalars(select(Approval).where(Approval.sop_run_id.in_(run_ids))
                           .order_by(Approval.asked_at, Approval.id))
    waits = session.scalars(select(Wait).where(Wait.sop_run_id.in_(run_ids), Wait.done_at.is_(None)))
    return _by_run(records), _by_run(asks), _by_run(waits)


def _run_row(run: SopRun, lead: Lead, records: list[StepRecord], asks: list[Approval], waits: list[Wait]) -> Row:
    open_asks = [a for a in asks if a.answered_at is None]
    return {
        "run_id": run.flow_run_id, "sop_run_id": run.id, "sop": run.sop_id, "sop_version": run.sop_version,
        "lead_id": run.lead_id, "lead_name": lead.name, "company": lead.company, "state": run.state,
        "outcome": run.outcome, "outcome_text": outcome_words(run, records, open_asks, waits),
        "started": run.started_at, "ended": run.ended_at,
    }


def run_rows(session: Session, sop_id: str | None = None, state: str | None = None) -> list[Row]:
    """SOP runs, newest first, with their lead's name and company and their outcome in words."""
    query = runs.runs_query(sop_id, state)
    records, asks, waits = _details(session, query.with_only_columns(SopRun.id).order_by(None))
    found = session.execute(query.add_columns(Lead).join(Lead, Lead.id == SopRun.lead_id)).tuples()
    return [_run_row(run, lead, records[run.id], asks[run.id], waits[run.id]) for run, lead in found]


def run_counts_by_sop(session: Session) -> dict[str, dict[str, int]]:
    """How many runs of each SOP are in each state, every state given (an SOP without runs reads all zeros)."""
    counts: defaultdict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(RUN_STATES, 0))
    query = select(SopRun.sop_id, SopRun.state, func.count()).group_by(SopRun.sop_id, SopRun.state)
    for sop_id, state, count in session.execute(query).tuples():
        counts[sop_id][state] = count
    return counts


def waiting_rows(session: Session, sop_id: str | None = None, step_id: str | None = None) -> list[Row]:
    """Approvals waiting for an answer, oldest first, with their lead's name and company."""
    query = approvals.waiting_query(sop_id, step_id).add_columns(Lead).join(Lead, Lead.id == SopRun.lead_id)
    return [
        {
            "run_id": run.flow_run_id, "sop": run.sop_id, "step": ask.step_id, "lead_id": run.lead_id,
            "lead_name": lead.name, "company": lead.company, "role": ask.role, "prompt": ask.prompt,
            "ask": ask.ask, "waiting_since": ask.asked_at, "due_by": ask.due_by,
        }
        for ask, run, lead in session.execute(query).tuples()
    ]


def lead_rows(session: Session, status: str | None = None) -> list[Row]:
    """Leads, newest first; only those in `status` when given."""
    query = where_given(select(Lead).order_by(Lead.created_at.desc(), Lead.id), (Lead.status, status))
    return [_lead_row(lead) for lead in session.scalars(query)]


def _lead_row(lead: Lead) -> Row:
    return {
        "id": lead.id, "name": lead.name, "email": lead.email, "company": lead.company, "title": lead.title,
        "employees": lead.employees, "industry": lead.industry, "source": lead.source, "status": lead.status,
        "owner": lead.owner, "score": lead.score, "grade": lead.grade, "stage": (lead.fields or {}).get("stage"),
        "do_not_contact": lead.do_not_contact, "unsubscribed_at": lead.unsubscribed_at,
        "created_at": lead.created_at, "updated_at": lead.updated_at,
    }


def _email_row(email: OutboxEmail, sop_id: str) -> Row:
    return {
        "id": email.id, "lead_id": email.lead_id, "sop": sop_id, "step": email.step_id, "to": email.to_address,
        "subject": email.subject, "status": email.status, "attempts": email.attempts,
        "created_at": email.created_at, "sent_at": email.sent_at, "last_error": email.last_error,
    }


def outbox_rows(session: Session, status: str | None = None) -> list[Row]:
    """Emails in the outbox, newest first, with their lead's name and company."""
    query = (outbox.emails_query(status).add_columns(SopRun.sop_id, Lead)
             .join(SopRun, SopRun.id == OutboxEmail.sop_run_id).join(Lead, Lead.id == OutboxEmail.lead_id))
    return [{**_email_row(email, sop_id), "lead_name": lead.name, "company": lead.company}
            for email, sop_id, lead in session.execute(query).tuples()]


def step_summary(record: StepRecord, email: OutboxEmail | None = None) -> str:
    """What one step did, in a few words."""
    result = record.result or {}
    if record.status != "completed":
        return str(result.get("reason") or result.get("status") or record.status)
    if record.kind == "score":
        return f"scored {result.get('score')} (grade {result.get('grade')}, stage {result.get('stage')})"
    if record.kind == "approval":
        return _decision_summary(result)
    if record.kind == "email" and email is not None:
        return f"email {email.status}: {email.subject!r}" + (f" ({email.last_error})" if email.last_error else "")
    if record.kind == "update_lead":
        changes = [f"status → {result['status']}"] if result.get("status") else []
        changes += [f"owner {result['owner']}"] if result.get("owner") else []
        changes += [f"{k} = {shown(v)}" for k, v in (result.get("fields") or {}).items()]
        changes += [f"started {', '.join(result['starts'])}"] if result.get("starts") else []
        return "; ".join(changes) or "no change"
    return ", ".join(f"{k}: {shown(v)}" for k, v in result.items() if not isinstance(v, (dict, list))) or "done"


def _decision_summary(result: dict[str, Any]) -> str:
    values = {k: v for k, v in result.items() if k not in ("decision", "approver", "notes", "asks")}
    text = f"{DECIDED.get(result.get('decision'), result.get('decision'))} by {result.get('approver')}"
    text += f" ({', '.join(f'{k}: {shown(v)}' for k, v in values.items())})" if values else ""
    return text + (f" after {result['asks']} asks" if result.get("asks", 1) > 1 else "")


def _ask_row(ask: Approval, sop_id: str) -> Row:
    return {
        "sop": sop_id, "step": ask.step_id, "ask": ask.ask, "role": ask.role, "prompt": ask.prompt,
        "asked_at": ask.asked_at, "due_by": ask.due_by, "answered_at": ask.answered_at,
        "decision": ask.decision, "approver": ask.approver, "notes": ask.notes,
        "accepted": ask.accepted, "refusal": ask.refusal,
    }


def _score(lead: Lead, records: Iterable[StepRecord], sop_of: dict[str, str]) -> Row | None:
    """The lead's current score, with the breakdown of the last score step that gave it (else the last one)."""
    scored = [r for r in records if r.kind == "score" and r.status == "completed" and "breakdown" in r.result]
    gave_it = [r for r in scored if r.result.get("score") == lead.score]  # other SOPs' score steps may differ
    last = max(gave_it or scored, key=lambda r: r.ended_at, default=None)
    if lead.score is None and last is None:
        return None
    source = last.result if last else {}
    return {
        "score": lead.score if lead.score is not None else source.get("score"),
        "grade": lead.grade or source.get("grade"),
        "stage": (lead.fields or {}).get("stage") or source.get("stage"),
        "breakdown": source.get("breakdown", []), "groups": source.get("groups", {}),
        "scored_by": {"sop": sop_of[last.sop_run_id], "step": last.step_id, "at": last.ended_at,
                      "score": source.get("score"), "grade": source.get("grade")} if last else None,
    }


def lead_history(session: Session, lead_id: str) -> Row | None:
    """Everything the store knows of what happened to one lead; None when no lead has this id."""
    lead = session.get(Lead, lead_id)
    if lead is None:
        return None
    query = runs.runs_query(lead_id=lead_id)
    records, asks, waits = _details(session, query.with_only_columns(SopRun.id).order_by(None))
    found = list(session.scalars(query))[::-1]  # oldest first: the order things happened
    sop_of = {run.id: run.sop_id for run in found}
    emails = {(e.sop_run_id, e.step_id): e for e in session.scalars(outbox.emails_query(lead_id=lead_id))}
    run_list = []
    for run in found:
        steps = [
            {"step": r.step_id, "kind": r.kind, "status": r.status, "started_at": r.started_at,
             "ended_at": r.ended_at, "summary": step_summary(r, emails.get((run.id, r.step_id))), "result": r.result}
            for r in records[run.id]
        ]
        run_list.append({**_run_row(run, lead, records[run.id], asks[run.id], waits[run.id]), "steps": steps})
    skipped = [
        {"id": None, "lead_id": lead.id, "sop": sop_of[r.sop_run_id], "step": r.step_id, "to": None, "subject": None,
         "status": "skipped", "attempts": 0, "created_at": r.ended_at, "sent_at": None,
         "last_error": None, "reason": r.result.get("reason")}
        for run in found for r in records[run.id] if r.kind == "email" and r.status == "skipped"
    ]
    sent = [{**_email_row(e, sop_of[e.sop_run_id]), "reason": e.last_error} for e in emails.values()]
    return {
        "lead": _lead_row(lead),
        "score": _score(lead, (r for run in found for r in records[run.id]), sop_of),
        "runs": run_list,
        "decisions": [_ask_row(a, run.sop_id) for run in found for a in asks[run.id]],
        "emails": sorted(sent + skipped, key=lambda e: e["created_at"]),
    }
