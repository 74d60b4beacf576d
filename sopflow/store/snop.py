"""S&OP plans: one per month, claimed once by the run that asks for its sign-off, signed by sales and operations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from sopflow.store.db import get_or_create
from sopflow.store.models import SnopPlan, utcnow

ROLES = ("sales", "operations")  # both sign every plan, in this order
DECISIONS = ("approve", "needs_changes")


def plan_for(session: Session, month: str) -> SnopPlan | None:
    """The plan of `month` ('YYYY-MM'), or None when no run has claimed it."""
    return session.scalar(select(SnopPlan).where(SnopPlan.month == month))


def plan_of_run(session: Session, flow_run_id: str) -> SnopPlan | None:
    """The plan flow run `flow_run_id` holds, or None."""
    return session.scalar(select(SnopPlan).where(SnopPlan.flow_run_id == flow_run_id))


def claim_plan(session: Session, month: str, flow_run_id: str) -> tuple[SnopPlan, bool]:
    """The plan of `month`, and whether `flow_run_id` holds it: it created the plan, found it unheld, or held it.

    Idempotent under concurrency: a plan is one row per month, so a run racing this one either finds the row or
    loses the insert (the unique constraint) and reads the winner's.
    """
    fresh = SnopPlan(month=month, flow_run_id=flow_run_id, state="open")
    plan = get_or_create(session, select(SnopPlan).where(SnopPlan.month == month), lambda: fresh)
    if plan.flow_run_id is None:
        return take_over(session, plan, None, flow_run_id), True
    return plan, plan.flow_run_id == flow_run_id


def take_over(session: Session, plan: SnopPlan, previous: str | None, flow_run_id: str) -> SnopPlan:
    """Hand the open `plan` from flow run `previous` (ended without a sign-off) to `flow_run_id`, unless another run
    took it meanwhile; the plan as it is then."""
    session.execute(update(SnopPlan).where(SnopPlan.id == plan.id, SnopPlan.state == "open",
                                           SnopPlan.flow_run_id.is_(None) if previous is None
                                           else SnopPlan.flow_run_id == previous).values(flow_run_id=flow_run_id))
    session.refresh(plan)
    return plan


def signed(plan: SnopPlan, role: str) -> dict[str, Any] | None:
    """`role`'s sign-off of `plan` as plain data (by, at, decision, notes), or None while it has not answered."""
    by = getattr(plan, f"{role}_signed_by")
    if by is None:
        return None
    at: datetime = getattr(plan, f"{role}_signed_at")
    return {"by": by, "at": at.isoformat(), "decision": getattr(plan, f"{role}_decision"),
            "notes": getattr(plan, f"{role}_notes")}


def record_sign_off(session: Session, plan_id: int, role: str, signer: str, decision: str, notes: str | None,
                    at: datetime | None = None) -> SnopPlan:
    """Record `role`'s answer to plan `plan_id`, once (a repeated call keeps the first); when both roles have
    answered the plan is `signed`, or `needs_changes` when either asked for changes."""
    if role not in ROLES or decision not in DECISIONS:
        raise ValueError(f"{role!r}/{decision!r} is not a sign-off; expected a role of {ROLES} and one of {DECISIONS}")
    plan = session.get_one(SnopPlan, plan_id, with_for_update=True)
    if signed(plan, role) is None:
        setattr(plan, f"{role}_signed_by", signer)
        setattr(plan, f"{role}_signed_at", at or utcnow())
        setattr(plan, f"{role}_decision", decision)
        setattr(plan, f"{role}_notes", notes or None)
        answers = [getattr(plan, f"{other}_decision") for other in ROLES]
        if None not in answers:
            plan.state = "needs_changes" if "needs_changes" in answers else "signed"
        session.flush()
    return plan
