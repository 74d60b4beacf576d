"""The interpreter: walk an SOP's plan for one lead, one Prefect task run per step, named by the step id.

A resumed run re-executes from the top: settled steps come back from the store, with no task run.
"""

from __future__ import annotations

from collections.abc import Callable

from prefect import get_run_logger
from prefect.client.schemas.objects import State
from prefect.exceptions import Pause
from prefect.runtime import flow_run
from prefect.states import Cancelled, Failed
from sqlalchemy.orm import Session

from flows.approval import await_decision
from flows.summary import publish_summary
from flows.waiting import await_wake
from sopflow.leads import is_lead_id
from sopflow.logs import redact_everywhere
from sopflow.plan import Plan
from sopflow.schema import END
from sopflow.store import reviews, runs, versions
from sopflow.store.db import transaction
from sopflow.store.models import Lead
from tasks.custom import custom
from tasks.email import email
from tasks.records import Result, StepCall, recorded
from tasks.score import score
from tasks.step_runs import run_step
from tasks.update_lead import update_lead
from tasks.webhook import webhook

STEP_RUNNERS: dict[str, Callable[[StepCall], Result]] = {
    "score": lambda call: run_step(score, call),
    "email": lambda call: run_step(email, call),
    "update_lead": lambda call: run_step(update_lead, call),
    "webhook": lambda call: run_step(webhook, call),
    "task": lambda call: run_step(custom, call),
    "approval": await_decision,
    "wait": await_wake,
}


def run_plan(plan: Plan, lead_id: str, sop_text: str = "") -> dict[str, str] | State:
    """Run `plan` for `lead_id` in the current flow run; safe to re-run from the top after a resume.

    `sop_text`, the SOP's text the plan was compiled from, is stored as the run begins (runs follow it).
    """
    redact_everywhere()
    logger = get_run_logger()
    with transaction() as session:
        unknown = _unknown_lead(session, lead_id)
        retired = None if unknown else _retired(session, plan.sop.id, lead_id)
        run = None if unknown or retired else runs.begin_run(
            session, plan.sop.id, lead_id, flow_run.get_id(), plan.version, plan.content_hash)
        if run is not None and sop_text:
            versions.record_version(session, plan.sop.id, plan.version, plan.content_hash, sop_text)
    if unknown:  # started by hand from the Prefect UI or CLI with a lead id the store does not hold
        logger.error(unknown)
        return Failed(message=unknown)
    if retired:
        logger.warning(retired)
        return Cancelled(message=retired)
    if run is None:
        logger.warning("Another flow run already runs SOP %s for lead %s; this one does nothing.", plan.sop.id, lead_id)
        return {"outcome": "duplicate"}
    step_id, outcome = plan.first, "completed"
    while step_id != END:
        planned = plan.steps[step_id]
        try:
            result = _step(StepCall(plan, run.id, lead_id, step_id))
        except Pause:  # suspended (the state says what for): the summary shows the steps so far and the open ask
            publish_summary(plan, run.id, lead_id)
            raise
        except Exception as exc:  # recorded, then re-raised so Prefect shows the failure (and can retry the run)
            with transaction() as session:
                runs.set_state(session, run.id, "failed", f"failed at {step_id}: {type(exc).__name__}")
            publish_summary(plan, run.id, lead_id)
            raise
        if result["status"] == "skipped":
            step_id = planned.following
        elif result.get("decision") == "reject":
            outcome = f"rejected at {step_id}"
            step_id = planned.on_reject or END
        else:
            step_id = planned.on_done
    with transaction() as session:
        runs.set_state(session, run.id, "completed", outcome)
    publish_summary(plan, run.id, lead_id)
    logger.info("SOP %s v%s finished for lead %s: %s", plan.sop.id, plan.version, lead_id, outcome)
    return {"sop_run_id": run.id, "outcome": outcome}


def _step(call: StepCall) -> Result:
    """The step's recorded result when it is settled (no task run: a resumed run does not show it again), else
    what its runner gives."""
    with transaction() as session:
        done = recorded(session, call)
    return done if done is not None else STEP_RUNNERS[call.planned.step.kind](call)


def _retired(session: Session, sop_id: str, lead_id: str) -> str | None:
    """Why the run must not begin: its SOP was retired by a review before it began (the run is cancelled), or None.

    A run that began before the retirement goes on to its end.
    """
    run = runs.run_of(session, sop_id, lead_id)
    if run is not None and run.state == "cancelled":
        return run.outcome
    if (run is not None and run.started_at is not None) or not reviews.retired(session, [sop_id]):
        return None
    reason = f"not started: {sop_id} was retired by its review; no new runs start"
    runs.cancel_unstarted(session, sop_id, reason, lead_id)
    return reason


def _unknown_lead(session: Session, lead_id: str) -> str | None:
    """Why `lead_id` cannot be run, in one sentence (never echoing what is not a lead id: it may be an email), or None."""
    how = "add the lead with `sopflow lead add --email ...` or POST /leads, and its SOP runs start by themselves"
    if not is_lead_id(lead_id):
        return f"The lead_id parameter is not a lead id (a UUID, as `sopflow leads` lists them); {how}."
    if session.get(Lead, lead_id) is None:
        return f"No lead has id {lead_id}; {how}."
    return None
