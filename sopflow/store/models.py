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
