"""A history of lead-qualification runs with one planted departure from the SOP of each kind, and clean runs:
what the audit tests, unit and against a real Prefect server, seed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy.orm import Session

from sopflow.store import runs
from sopflow.store.models import Approval, Lead, OutboxEmail, SopRun, Wait
from tests.unit.test_kpi import new_lead

LQ = "lead-qualification"
APPROVED = [("score_lead", "score", 0, "completed", {}), ("send_to_nurture", "update_lead", 0, "skipped", {}),
            ("rep_qualification", "approval", 5, "completed", {"decision": "approve", "approver": "Alex Kim"}),
            ("manager_approval", "approval", 3, "completed", {"decision": "approve", "approver": "Maria Lopez"}),
            ("follow_up_email", "email", 0, "completed", {}), ("mark_qualified", "update_lead", 0, "completed", {})]
PLANTED = {  # label: the findings (kind, step, person) its run must give, and no others
    "missing": {("skipped_step", "rep_qualification", None)},
    "skipped": {("skipped_step", "mark_qualified", None)},
    "order": {("out_of_order", "rep_qualification", None), ("skipped_step", "rep_qualification", None)},
    "late": {("sla_missed", "rep_qualification", "Priya Shah")},
    "roster": {("off_roster", "manager_approval", "Bob Stranger")},
    "overdue": {("overdue", "rep_qualification", None)},
    "consent": {("no_consent", "follow_up_email", None)},
    "failed": {("failed", None, None)},
    "crashed": {("failed", None, None)},
    "stuck": {("stuck", "send_to_nurture", None)},
    "unstarted": {("stuck", None, None)},
    "woken": {("stuck", "send_to_nurture", None)},
}


def seed_run(session: Session, steps: list, now: datetime, state: str = "completed", age: timedelta = timedelta(days=2),
             outcome: str | None = None, flow_run_id: str | None = None, sop_hash: str | None = None) -> SopRun:
    """A run of lead-qualification created `age` before `now` whose records are `steps`: (step id, kind, hours it
    took, status, result), one after the other."""
    run = runs.ensure_run(session, LQ, new_lead(session))
    run.created_at = run.started_at = moment = now - age
    run.state, run.outcome, run.flow_run_id, run.sop_hash = state, outcome, flow_run_id, sop_hash
    for step_id, kind, took, status, result in steps:
        record = runs.record_step(session, run.id, step_id, kind, status, result, moment)
        moment = record.ended_at = moment + timedelta(hours=took, minutes=1)
    run.ended_at = moment if state in ("completed", "failed") else None
    session.flush()
    return run


def swap(steps: list, step_id: str, **changes) -> list:
    """`steps` with step `step_id`'s hours (took), status or result changed."""
    return [(s, k, changes.get("took", t), changes.get("status", st), changes.get("result", r))
            if s == step_id else (s, k, t, st, r) for s, k, t, st, r in steps]


def plant(session: Session, now: datetime, crashed_flow_run_id: str) -> dict:
    """Clean runs (approved, nurtured, rejected, waiting in time) and a run per PLANTED label, the audit ending
    at `now`; one more run, with a departure, a month old. {"clean": [run ids], label: run id, ...}.

    `crashed_flow_run_id`: a flow run Prefect reports as crashed, that the "crashed" run's store row says runs."""
    run = partial(seed_run, session, now=now)

    def hours(count: float) -> timedelta:
        return timedelta(hours=count)

    clean = [run(APPROVED), run([APPROVED[0], ("send_to_nurture", "update_lead", 0, "completed", {})]),
             run([*APPROVED[:2], ("rep_qualification", "approval", 1, "completed",
                                  {"decision": "reject", "approver": "Priya Shah"}),
                  ("disqualify", "update_lead", 0, "completed", {})]),
             run(APPROVED[:2], state="waiting", age=hours(5))]
    session.add(Approval(sop_run_id=clean[3].id, step_id="rep_qualification", ask=0, role="rep", prompt="?",
                         asked_at=now - hours(5), due_by=now + hours(24)))
    planted = {
        "missing": run([s for s in APPROVED if s[0] != "rep_qualification"]),
        "skipped": run(swap(APPROVED, "mark_qualified", status="skipped")),
        "order": run([*APPROVED[:2], APPROVED[3], APPROVED[2], *APPROVED[4:]]),
        "late": run(swap(APPROVED, "rep_qualification", took=72,
                         result={"decision": "approve", "approver": "Priya Shah"})),
        "roster": run(swap(APPROVED, "manager_approval", result={"decision": "approve", "approver": "Bob Stranger"})),
        "overdue": run(APPROVED[:2], state="waiting"),
        "consent": run(APPROVED),
        "failed": run(APPROVED[:4], state="failed", outcome="failed at follow_up_email: SMTPException"),
        "crashed": run(APPROVED[:2], state="running", age=timedelta(minutes=20), flow_run_id=crashed_flow_run_id),
        "stuck": run(APPROVED[:2], state="running", age=hours(3)),
        "unstarted": run([], state="pending", age=hours(2), flow_run_id=str(uuid.uuid4())),  # its flow run never began
        "woken": run(APPROVED[:2], state="waiting", age=hours(24), flow_run_id=str(uuid.uuid4())),
    }
    session.add(Approval(sop_run_id=planted["overdue"].id, step_id="rep_qualification", ask=0, role="rep",
                         prompt="?", asked_at=now - hours(48), due_by=now - hours(6)))
    lead = session.get_one(Lead, planted["consent"].lead_id)
    lead.unsubscribed_at = now - hours(72)
    session.add_all([OutboxEmail(sop_run_id=planted["consent"].id, step_id="follow_up_email", lead_id=lead.id,
                                 to_address=lead.email, subject="s", body_text="b", status="sent", sent_at=now),
                     OutboxEmail(sop_run_id=clean[0].id, step_id="follow_up_email", lead_id=clean[0].lead_id,
                                 to_address="x@example.com", subject="s", body_text="b", status="sent", sent_at=now),
                     Wait(sop_run_id=planted["woken"].id, step_id="pause", wake_at=now - hours(2))])
    run([s for s in APPROVED if s[0] != "rep_qualification"], age=timedelta(days=30))
    session.flush()
    return {"clean": [r.id for r in clean], **{label: r.id for label, r in planted.items()}}
