"""Audits and their findings, kept so that trends, reports and reviews can read them."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from sopflow.store.models import Audit, AuditFinding

if TYPE_CHECKING:
    from sopflow.audit import AuditResult


def record_audit(session: Session, result: AuditResult, flow_run_id: str | None = None) -> Audit:
    """Store `result` and its findings in the session's transaction: all of it, or nothing."""
    row = Audit(since=result.since, until=result.until, sop_id=result.sop_id, flow_run_id=flow_run_id,
                runs=result.runs, findings=len(result.findings), adherence=result.adherence)
    session.add(row)
    session.flush()
    if result.findings:
        session.execute(insert(AuditFinding), [{"audit_id": row.id, **asdict(f)} for f in result.findings])
    return row


def findings_of(session: Session, audit_id: int) -> list[AuditFinding]:
    return list(session.scalars(select(AuditFinding).where(AuditFinding.audit_id == audit_id)
                                .order_by(AuditFinding.sop_id, AuditFinding.kind, AuditFinding.id)))


def recent(session: Session, count: int = 8) -> list[Audit]:
    """The last `count` audits, newest first."""
    return list(session.scalars(select(Audit).order_by(Audit.created_at.desc(), Audit.id.desc()).limit(count)))


def adherence_trend(session: Session, sop_id: str, count: int = 8) -> list[dict[str, Any]]:
    """The SOP's run adherence in the last `count` audits that covered it, oldest first: until, audited, rate."""
    found = []
    for row in recent(session, count * 4):
        rate = row.adherence.get("sop", {}).get(sop_id)
        if rate is not None and row.sop_id in (None, sop_id):
            found.append({"until": row.until, **rate})
    return list(reversed(found[:count]))
