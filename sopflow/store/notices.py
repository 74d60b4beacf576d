"""Approval notices in the store: one row per (ask, occasion, recipient), delivered like the outbox."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow.store.models import ApprovalNotice


def occasion_queued(session: Session, approval_id: int, occasion: str) -> bool:
    """Whether the notices of `occasion` for ask `approval_id` are queued already."""
    query = select(ApprovalNotice.id).where(ApprovalNotice.approval_id == approval_id,
                                            ApprovalNotice.occasion == occasion)
    return session.scalars(query.limit(1)).first() is not None


def add_notice(session: Session, notice: ApprovalNotice) -> ApprovalNotice | None:
    """Queue `notice`, in a savepoint: None when that (ask, occasion, recipient) is queued already."""
    try:
        with session.begin_nested():
            session.add(notice)
    except IntegrityError:
        return None
    return notice


def queued(session: Session, limit: int = 100) -> list[tuple[int, int]]:
    """Notices waiting to go out (new, or back after a transient failure), oldest first: (id, attempts so far)."""
    query = (select(ApprovalNotice.id, ApprovalNotice.attempts).where(ApprovalNotice.status == "queued")
             .order_by(ApprovalNotice.id))
    return [(notice_id, attempts) for notice_id, attempts in session.execute(query.limit(limit))]


def sending(session: Session, limit: int = 100) -> list[tuple[int, int]]:
    """Notices claimed for sending and not settled (being sent, or their sender died), oldest first: (id, attempts)."""
    query = (select(ApprovalNotice.id, ApprovalNotice.attempts).where(ApprovalNotice.status == "sending")
             .order_by(ApprovalNotice.id))
    return [(notice_id, attempts) for notice_id, attempts in session.execute(query.limit(limit))]


def give_up(session: Session, max_attempts: int) -> list[int]:
    """Mark failed the queued notices tried `max_attempts` times already (their last error stays); their ids."""
    query = select(ApprovalNotice.id).where(ApprovalNotice.status == "queued",
                                            ApprovalNotice.attempts >= max_attempts)
    ids = list(session.scalars(query))
    if ids:
        session.execute(update(ApprovalNotice).where(ApprovalNotice.id.in_(ids), ApprovalNotice.status == "queued")
                        .values(status="failed"))
    return ids


def notices_of(session: Session, ask_ids: Collection[int]) -> list[ApprovalNotice]:
    """The notices of the asks `ask_ids`, in the order they were queued."""
    query = select(ApprovalNotice).where(ApprovalNotice.approval_id.in_(list(ask_ids))).order_by(ApprovalNotice.id)
    return list(session.scalars(query))
