"""Tables of the store (SQLAlchemy 2.x). Timestamps are timezone-aware UTC."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import JSON, Date, DateTime, ForeignKey, Index, Integer, String, Text, TypeDecorator, UniqueConstraint
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_id() -> str:
    return str(uuid.uuid4())


class UtcDateTime(TypeDecorator):
    """Stores aware datetimes as UTC; SQLite hands back naive ones, which are UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("store timestamps must be timezone-aware")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON}


class Lead(Base):
    __tablename__ = "leads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str | None] = mapped_column(String(200))
    company: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str | None] = mapped_column(String(200))
    employees: Mapped[int | None] = mapped_column(Integer)
    industry: Mapped[str | None] = mapped_column(String(100))
    source: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(40), default="new")
    owner: Mapped[str | None] = mapped_column(String(200))
    score: Mapped[int | None] = mapped_column(Integer)
    grade: Mapped[str | None] = mapped_column(String(1))
    fields: Mapped[dict[str, Any]] = mapped_column(default=dict)
    do_not_contact: Mapped[bool] = mapped_column(default=False)
    unsubscribed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


class SopRun(Base):
    """One run of one SOP for one lead: at most one per (SOP, lead)."""

    __tablename__ = "sop_runs"
    __table_args__ = (UniqueConstraint("sop_id", "lead_id"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    sop_id: Mapped[str] = mapped_column(String(100))
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"))
    flow_run_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    sop_version: Mapped[int | None] = mapped_column(Integer)
    sop_hash: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default="pending")
    outcome: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    summary_artifact_id: Mapped[str | None] = mapped_column(String(36))  # the run's Prefect summary artifact


class StepRecord(Base):
    """What a step did in a run, written once, in the same transaction as its effects."""

    __tablename__ = "step_records"
    __table_args__ = (UniqueConstraint("sop_run_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sop_run_id: Mapped[str] = mapped_column(ForeignKey("sop_runs.id"))
    step_id: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(20))  # completed | skipped
    result: Mapped[dict[str, Any]] = mapped_column(default=dict)
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime] = mapped_column(default=utcnow)


class Approval(Base):
    """One time an approval step asked; answered once. A refused answer leads to a new ask."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("sop_run_id", "step_id", "ask"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sop_run_id: Mapped[str] = mapped_column(ForeignKey("sop_runs.id"))
    step_id: Mapped[str] = mapped_column(String(100))
    ask: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(100))
    prompt: Mapped[str] = mapped_column(Text)
    asked_at: Mapped[datetime] = mapped_column(default=utcnow)
    due_by: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    decision: Mapped[str | None] = mapped_column(String(20))
    approver: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    accepted: Mapped[bool | None]
    refusal: Mapped[str | None] = mapped_column(Text)


def _outbox_key(context: Any) -> str:
    """The email's idempotency key, stable per (run, step): sopflow-<run id>-<step id>."""
    row = context.get_current_parameters()
    return f"sopflow-{row['sop_run_id']}-{row['step_id']}"


class OutboxEmail(Base):
    """An email a step queued: exactly one per (run, step)."""

    __tablename__ = "outbox"
    __table_args__ = (UniqueConstraint("sop_run_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sop_run_id: Mapped[str] = mapped_column(ForeignKey("sop_runs.id"))
    step_id: Mapped[str] = mapped_column(String(100))
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"))
    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|sending|sent|failed|unconfirmed
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)  # extra headers, e.g. List-Unsubscribe
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True, default=_outbox_key)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[datetime | None]


class Wait(Base):
    """A `wait` step's wake time; the waker resumes the suspended run once it has passed."""

    __tablename__ = "waits"
    __table_args__ = (UniqueConstraint("sop_run_id", "step_id"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sop_run_id: Mapped[str] = mapped_column(ForeignKey("sop_runs.id"))
    step_id: Mapped[str] = mapped_column(String(100))
    wake_at: Mapped[datetime]
    done_at: Mapped[datetime | None]


class Engagement(Base):
    """Something a lead did (opened an email, replied, met, visited); scoring counts the recent ones."""

    __tablename__ = "engagements"
    __table_args__ = (Index("ix_engagements_counts", "lead_id", "kind", "occurred_at"),)  # counts read only this

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    lead_id: Mapped[str] = mapped_column(ForeignKey("leads.id"))
    kind: Mapped[str] = mapped_column(String(20))  # opened | replied | meeting | visit
    occurred_at: Mapped[datetime] = mapped_column(default=utcnow)
    source: Mapped[str | None] = mapped_column(String(40))  # cli | intake | ...


class SopVersion(Base):
    """One distinct text of an SOP that sopflow loaded: runs started on it follow it to their end."""

    __tablename__ = "sop_versions"
    __table_args__ = (UniqueConstraint("sop_id", "content_hash"), Index("ix_sop_versions_version", "sop_id", "version"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sop_id: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    content_hash: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """One scheduled review of an SOP: exactly one per (SOP, due date), however many schedulers claim it."""

    __tablename__ = "reviews"
    __table_args__ = (UniqueConstraint("sop_id", "due_on"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sop_id: Mapped[str] = mapped_column(String(100))
    due_on: Mapped[date] = mapped_column(Date)
    sop_version: Mapped[int] = mapped_column(Integer)  # the version under review, as loaded when claimed
    sop_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(10), default="open")  # open | done
    outcome: Mapped[str | None] = mapped_column(String(10))  # keep | revise | retire
    reviewer: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    flow_run_id: Mapped[str | None] = mapped_column(String(36))
    packet: Mapped[dict[str, Any] | None]  # the figures the reviewer was shown, frozen when the review run opened
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    decided_at: Mapped[datetime | None]


class Feedback(Base):
    """What someone said about an SOP (or one of its steps), against the version they were following."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_sop", "sop_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    sop_id: Mapped[str] = mapped_column(String(100))
    sop_version: Mapped[int] = mapped_column(Integer)
    sop_hash: Mapped[str] = mapped_column(String(64))
    step_id: Mapped[str | None] = mapped_column(String(100))
    text: Mapped[str] = mapped_column(Text)
    given_by: Mapped[str | None] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(20))  # cli | approval
    sop_run_id: Mapped[str | None] = mapped_column(ForeignKey("sop_runs.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Audit(Base):
    """One audit: the runs of a window compared with the SOP versions they followed, and the adherence found."""

    __tablename__ = "audits"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    since: Mapped[datetime]
    until: Mapped[datetime]
    sop_id: Mapped[str | None] = mapped_column(String(100))  # the one SOP audited, or None for all
    flow_run_id: Mapped[str | None] = mapped_column(String(36))  # the audit run, when a flow ran it
    runs: Mapped[int] = mapped_column(Integer)
    findings: Mapped[int] = mapped_column(Integer)
    adherence: Mapped[dict[str, Any]]  # {"sop": {id: {...}}, "step": {...}, "person": {...}}: audited, clean, rate
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class AuditFinding(Base):
    """One departure from an SOP an audit found: in which run and step, by whom, and the evidence."""

    __tablename__ = "audit_findings"
    __table_args__ = (Index("ix_audit_findings_audit", "audit_id"), Index("ix_audit_findings_sop", "sop_id", "kind"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    audit_id: Mapped[int] = mapped_column(ForeignKey("audits.id"))
    kind: Mapped[str] = mapped_column(String(30))
    sop_id: Mapped[str] = mapped_column(String(100))
    sop_version: Mapped[int | None] = mapped_column(Integer)
    sop_run_id: Mapped[str | None] = mapped_column(ForeignKey("sop_runs.id"))
    step_id: Mapped[str | None] = mapped_column(String(100))
    person: Mapped[str | None] = mapped_column(String(200))
    evidence: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime | None]


class SnopPlan(Base):
    """One month's S&OP plan: demand against capacity, frozen when its run opened, signed off by sales and operations.

    Exactly one per month ('YYYY-MM'), however many runs or schedulers claim it.
    """

    __tablename__ = "snop_plans"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    month: Mapped[str] = mapped_column(String(7), unique=True)
    figures: Mapped[dict[str, Any] | None]  # sopflow.snop.plan_figures, frozen the first time the plan run computed it
    flow_run_id: Mapped[str | None] = mapped_column(String(36))  # the run that holds the plan (asks for sign-off)
    state: Mapped[str] = mapped_column(String(20), default="open")  # open | signed | needs_changes
    sales_signed_by: Mapped[str | None] = mapped_column(String(200))
    sales_signed_at: Mapped[datetime | None]
    sales_decision: Mapped[str | None] = mapped_column(String(20))  # approve | needs_changes
    sales_notes: Mapped[str | None] = mapped_column(Text)
    operations_signed_by: Mapped[str | None] = mapped_column(String(200))
    operations_signed_at: Mapped[datetime | None]
    operations_decision: Mapped[str | None] = mapped_column(String(20))
    operations_notes: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApprovalLink(Base):
    """A signed, single-use link to answer one approval ask as one person (`sopflow.approval_links`).

    The token is `<id>.<HMAC-SHA256 of id, ask, person, expiry>`: the store holds no token, only what it signs.
    """

    __tablename__ = "approval_links"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    approval_id: Mapped[int] = mapped_column(ForeignKey("approvals.id"), index=True)
    person: Mapped[str] = mapped_column(String(200))  # the roster's spelling: the identity the answer is recorded under
    issued_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]  # whole seconds: it is signed
    used_at: Mapped[datetime | None]  # set with `decision` when the link answered (verified); used once
    decision: Mapped[str | None] = mapped_column(String(20))


class ApprovalNotice(Base):
    """An approval notice: an email to one person, or a post to a role's channel; one per (ask, occasion, recipient).

    Delivered like the outbox (queued -> sending -> sent | failed | unconfirmed). An email's bodies hold a marker
    where the recipient's link goes: the link is signed as it is sent, never stored.
    """

    __tablename__ = "approval_notices"
    __table_args__ = (UniqueConstraint("approval_id", "occasion", "recipient"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    approval_id: Mapped[int] = mapped_column(ForeignKey("approvals.id"))
    occasion: Mapped[str] = mapped_column(String(40))  # ask | remind-<i> | escalate-<i> (i: the overdue action)
    channel: Mapped[str] = mapped_column(String(10))  # email | block
    recipient: Mapped[str] = mapped_column(String(200))  # the person's roster name, or the block's slug
    to_address: Mapped[str] = mapped_column(String(320))  # the email address, or the block's slug
    link_id: Mapped[str | None] = mapped_column(ForeignKey("approval_links.id"))
    subject: Mapped[str] = mapped_column(String(500))
    body_text: Mapped[str] = mapped_column(Text)
    body_html: Mapped[str | None] = mapped_column(Text)
    headers: Mapped[dict[str, Any]] = mapped_column(default=dict)
    status: Mapped[str] = mapped_column(String(20), default="queued")  # queued|sending|sent|failed|unconfirmed
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True, default=lambda: f"sopflow-notice-{new_id()}")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    provider_id: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]


class SlaAction(Base):
    """An overdue action of an approval step taken for one ask: claimed once per (ask, action index)."""

    __tablename__ = "sla_actions"
    __table_args__ = (UniqueConstraint("approval_id", "action_index"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    approval_id: Mapped[int] = mapped_column(ForeignKey("approvals.id"))
    action_index: Mapped[int] = mapped_column(Integer)  # its place in the step's `overdue` list
    action: Mapped[str] = mapped_column(String(20))  # remind | escalate | decide
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)  # {to, people} | {people} | {decision, reason}
    due_at: Mapped[datetime]  # the ask's due time plus the action's `after`
    taken_at: Mapped[datetime] = mapped_column(default=utcnow)  # claimed: notices queued, or the answer being sent
    done_at: Mapped[datetime | None]  # decide: the run was resumed with the answer
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
