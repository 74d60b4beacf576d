"""Every distinct text of every SOP sopflow loaded, and which versions runs started on."""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sopflow.store.db import get_or_create
from sopflow.store.models import SopRun, SopVersion


def record_version(session: Session, sop_id: str, version: int, content_hash: str, text: str) -> SopVersion:
    """The stored version of `sop_id` with this content, stored now if it is new (safe under concurrency)."""
    query = select(SopVersion).where(SopVersion.sop_id == sop_id, SopVersion.content_hash == content_hash)
    return get_or_create(session, query, lambda: SopVersion(
        sop_id=sop_id, version=version, content_hash=content_hash, text=text))


def versions_of(session: Session, sop_id: str) -> list[SopVersion]:
    """The stored versions of `sop_id`, oldest first."""
    query = select(SopVersion).where(SopVersion.sop_id == sop_id)
    return list(session.scalars(query.order_by(SopVersion.version, SopVersion.first_seen, SopVersion.id)))


def latest_by_version(session: Session, sop_id: str) -> dict[int, SopVersion]:
    """Each version number of `sop_id` with its text as last stored (an edit that kept the number replaces it)."""
    return {row.version: row for row in versions_of(session, sop_id)}


def text_of(session: Session, sop_id: str, content_hash: str) -> str | None:
    """The stored text of `sop_id` with this content hash, or None."""
    query = select(SopVersion.text).where(SopVersion.sop_id == sop_id, SopVersion.content_hash == content_hash)
    return session.scalar(query)


def started_on(session: Session, sop_id: str, lead_id: str) -> str | None:
    """The content hash the run of `sop_id` for `lead_id` started on; None before it started."""
    return session.scalar(select(SopRun.sop_hash).where(SopRun.sop_id == sop_id, SopRun.lead_id == lead_id))


def run_counts(session: Session, sop_id: str) -> dict[str, int]:
    """How many runs of `sop_id` started on each content hash."""
    query = (select(SopRun.sop_hash, func.count()).where(SopRun.sop_id == sop_id, SopRun.sop_hash.is_not(None))
             .group_by(SopRun.sop_hash))
    return {content_hash: count for content_hash, count in session.execute(query)}


def stored_hashes(session: Session, sop_ids: Collection[str]) -> set[tuple[str, str]]:
    """(SOP id, content hash) of every stored version of these SOPs."""
    query = select(SopVersion.sop_id, SopVersion.content_hash).where(SopVersion.sop_id.in_(sop_ids))
    return {(sop_id, content_hash) for sop_id, content_hash in session.execute(query)}


def run_hashes(session: Session, sop_ids: Collection[str]) -> dict[tuple[str, int], set[str]]:
    """By (SOP id, version): the content hashes runs started on, of the versions whose text is stored."""
    query = (select(SopRun.sop_id, SopRun.sop_version, SopRun.sop_hash).distinct()
             .join(SopVersion, (SopVersion.sop_id == SopRun.sop_id) & (SopVersion.content_hash == SopRun.sop_hash))
             .where(SopRun.sop_id.in_(sop_ids)))
    found: dict[tuple[str, int], set[str]] = {}
    for sop_id, version, content_hash in session.execute(query):
        found.setdefault((sop_id, version), set()).add(content_hash)
    return found


def highest_versions(session: Session, sop_ids: Collection[str]) -> dict[str, int]:
    """The highest stored version of each of these SOPs."""
    query = (select(SopVersion.sop_id, func.max(SopVersion.version)).where(SopVersion.sop_id.in_(sop_ids))
             .group_by(SopVersion.sop_id))
    return {sop_id: version for sop_id, version in session.execute(query)}


def known_sop_ids(session: Session) -> list[str]:
    """Every SOP id the store holds a version of."""
    return list(session.scalars(select(SopVersion.sop_id).distinct().order_by(SopVersion.sop_id)))
