"""Signed approval links in the store, and which answers came through one (verified)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, select, update
from sqlalchemy.orm import Session

from sopflow.store.models import Approval, ApprovalLink


def add_link(session: Session, approval_id: int, person: str, expires_at: datetime) -> ApprovalLink:
    link = ApprovalLink(approval_id=approval_id, person=person, expires_at=expires_at.replace(microsecond=0))
    session.add(link)
    session.flush()
    return link


def used_for(session: Session, approval_id: int) -> ApprovalLink | None:
    """The link that answered ask `approval_id` (or is passing its answer on right now), if any."""
    query = select(ApprovalLink).where(ApprovalLink.approval_id == approval_id, ApprovalLink.used_at.is_not(None))
    return session.scalars(query.limit(1)).first()


def release(session: Session, link_id: str) -> None:
    """Make a link usable again after the answer it took could not be passed on to its run."""
    session.execute(update(ApprovalLink).where(ApprovalLink.id == link_id).values(used_at=None, decision=None))


def verifies(link: Any, ask: Any) -> ColumnElement[bool]:
    """The join condition of an ask's accepted answer and the link that verifies it: the link issued to that person
    for that ask was used, with that decision."""
    return and_(link.approval_id == ask.id, link.used_at.is_not(None), link.person == ask.approver,
                link.decision == ask.decision)


def verified_asks(session: Session, ask_ids: Collection[int]) -> set[int]:
    """Of the asks `ask_ids`, those whose accepted answer came through the answerer's own signed link.

    Verified: the link issued to that person for that ask was used, with that decision. Any other answer (the
    Prefect UI, `sopflow approve`, a decision by sopflow) holds a name as typed: unverified.
    """
    if not ask_ids:
        return set()
    query = (select(Approval.id).join(ApprovalLink, verifies(ApprovalLink, Approval))
             .where(Approval.id.in_(list(ask_ids)), Approval.accepted.is_(True)))
    return set(session.scalars(query))
