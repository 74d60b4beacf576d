"""SOP runs and their step records."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from sopflow.store.db import get_or_create
from sopflow.store.filters import where_given
from sopflow.store.models import SopRun, StepRecord, utcnow


def _run_query(sop_id: str, lead_id: str) -> Select[tuple[SopRun]]:
    return select(SopRun).where(SopRun.sop_id == sop_id, SopRun.lead_id == lead_id)


def run_of(session: Session, sop_id: str, lead_id: str) -> SopRun | None:
    """The run of `sop_id` for `lead_id`, or None when there is none."""
    return session.scalar(_run_query(sop_id, lead_id))


def ensure_run(session: Session, sop_id: str, lead_id: str) -> SopRun:
    """The run of `sop_id` for `lead_id`, created if absent (one per SOP and lead)."""
    return get_or_create(session, _run_query(sop_id, lead_id), lambda: SopRun(sop_id=sop_id, lead_id=lead_id))


def begin_run(
    session: Session, sop_id: str, lead_id: str, flow_run_id: str, version: int, content_hash: str
) -> SopRun | None:
    """Mark the run started by `flow_run_id`; None when another flow run owns this (SOP, lead)."""
    run = ensure_run(session, sop_id, lead_id)
    if run.flow_run_id not in (None, flow_run_id):
        return None
    run.flow_run_id = flow_run_id
    set_state(session, run.id, "running")
    run.started_at = run.started_at or utcnow()
    run.sop_version = run.sop_version or version
    run.sop_hash = run.sop_hash or content_hash
    return run


def set_state(session: Session, run_id: str, state: str, outcome: str | None = None) -> None:
    run = session.get_one(SopRun, run_id)
    run.state = state
    if state == "running":
        run.outcome, run.ended_at = None, None  # a failed run retried from the Prefect UI goes on
    if state in ("completed", "failed"):
        run.outcome = outcome
        run.ended_at = run.ended_at or utcnow()


def step_record(session: Session, run_id: str, step_id: str) -> StepRecord | None:
    return session.scalar(select(StepRecord).where(StepRecord.sop_run_id == run_id, StepRecord.step_id == step_id))


def record_step(
    session: Session, run_id: str, step_id: str, kind: str, status: str, result: dict[str, Any], started_at: datetime
) -> StepRecord:
    record = StepRecord(
        sop_run_id=run_id, step_id=step_id, kind=kind, status=status, result=result, started_at=started_at
    )
    session.add(record)
    session.flush()  # a second record for the same step fails here, rolling back its effects
    return record


def step_results(session: Session, run_id: str) -> dict[str, dict[str, Any]]:
    records = session.scalars(select(StepRecord).where(StepRecord.sop_run_id == run_id).order_by(StepRecord.id))
    return {r.step_id: {"status": r.status, **r.result} for r in records}


def unstarted(session: Session, sop_ids: Collection[str]) -> int:
    """How many claimed runs of these SOPs wait for a flow run (cancelled ones never get one)."""
    query = select(func.count()).where(SopRun.flow_run_id.is_(None), SopRun.sop_id.in_(sop_ids),
                                       SopRun.state == "pending")
    return session.scalar(query) or 0


def cancel_unstarted(session: Session, sop_id: str, reason: str, lead_id: str | None = None) -> int:
    """Cancel the SOP's runs that have not begun (its lead's only, when given), with `reason`; return how many.

    A flow run already created for one of them ends at once when it starts (flows.interpreter).
    """
    query = update(SopRun).where(SopRun.sop_id == sop_id, SopRun.state == "pending", SopRun.started_at.is_(None))
    if lead_id:
        query = query.where(SopRun.lead_id == lead_id)
    result = session.execute(query.values(state="cancelled", outcome=reason, ended_at=utcnow()))
    return result.rowcount  # type: ignore[attr-defined]


def runs_query(
    sop_id: str | None = None, state: str | None = None, lead_id: str | None = None
) -> Select[tuple[SopRun]]:
    """Runs, newest first; only those of `sop_id`, in `state` or for `lead_id` when given."""
    query = select(SopRun).order_by(SopRun.created_at.desc(), SopRun.id)
    return where_given(query, (SopRun.sop_id, sop_id), (SopRun.state, state), (SopRun.lead_id, lead_id))


def list_runs(
    session: Session, sop_id: str | None = None, state: str | None = None, lead_id: str | None = None
) -> list[SopRun]:
    return list(session.scalars(runs_query(sop_id, state, lead_id)))


def sop_ids(session: Session) -> list[str]:
    """Every SOP id the store has runs of."""
    return list(session.scalars(select(SopRun.sop_id).distinct().order_by(SopRun.sop_id)))


def open_flow_run_ids(session: Session, sop_id: str | None = None) -> list[str]:
    """The flow run ids of the runs under way (running or waiting), of `sop_id` only when given."""
    query = select(SopRun.flow_run_id).where(SopRun.state.in_(("running", "waiting")), SopRun.flow_run_id.is_not(None))
    return list(session.scalars(where_given(query, (SopRun.sop_id, sop_id))))


def flow_runs_of(session: Session, run_ids: Collection[str]) -> dict[str, str | None]:
    """Each of these runs' flow run id (None before its flow run was created)."""
    if not run_ids:
        return {}
    query = select(SopRun.id, SopRun.flow_run_id).where(SopRun.id.in_(list(run_ids)))
    return dict(session.execute(query).tuples().all())
