"""Wake times of `wait` steps."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from sopflow.store.db import get_or_create
from sopflow.store.models import SopRun, Wait, utcnow


def wait_for_step(session: Session, run_id: str, step_id: str, wake_at: datetime) -> Wait:
    """The step's wait, created with `wake_at` the first time; later calls keep the first wake time."""
    query = select(Wait).where(Wait.sop_run_id == run_id, Wait.step_id == step_id)
    return get_or_create(session, query, lambda: Wait(sop_run_id=run_id, step_id=step_id, wake_at=wake_at))


def due(session: Session, now: datetime | None = None) -> list[tuple[Wait, SopRun]]:
    """Waits whose wake time has passed and whose run has not gone on yet."""
    query = (
        select(Wait, SopRun).join(SopRun, SopRun.id == Wait.sop_run_id)
        .where(Wait.done_at.is_(None), Wait.wake_at <= (now or utcnow()))
        .order_by(Wait.wake_at)
    )
    return [(w, r) for w, r in session.execute(query)]


def pending(session: Session) -> list[tuple[Wait, SopRun]]:
    query = select(Wait, SopRun).join(SopRun, SopRun.id == Wait.sop_run_id).where(Wait.done_at.is_(None))
    return [(w, r) for w, r in session.execute(query.order_by(Wait.wake_at))]
