"""`update_lead` step: set the lead's status, owner and fields."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from sqlalchemy.orm import Session

from sopflow.catalog import sops_started_by
from sopflow.schema import UpdateLeadStep
from sopflow.services.starting import UNREACHABLE, start_claimed
from sopflow.store import reviews, runs
from sopflow.store.leads import get_lead
from tasks.records import Result, StepCall, once
from tasks.step_runs import shown


def _update(session: Session, call: StepCall, context: dict[str, Any]) -> Result:
    step = call.planned.step
    assert isinstance(step, UpdateLeadStep)
    lead = get_lead(session, call.lead_id)
    changes: Result = {}
    if step.status and step.status != lead.status:
        lead.status = changes["status"] = step.status
        # Claimed in this transaction, so the status change and the runs it starts commit together.
        started = sops_started_by("lead_status", step.status)
        retired = reviews.retired(session, started)  # a retired SOP starts no new runs
        changes["starts"] = [runs.ensure_run(session, sop_id, lead.id).sop_id
                             for sop_id in started if sop_id not in retired]
    if step.assign_to:
        lead.owner = changes["owner"] = call.plan.sop.people(step.assign_to)[0]
    if step.fields:
        lead.fields = {**lead.fields, **step.fields}
        changes["fields"] = dict(step.fields)
    return changes


@task(cache_policy=NO_CACHE)
def update_lead(call: StepCall) -> State:
    result = once(call, _update)
    if result.get("starts"):
        try:
            start_claimed(call.lead_id)
        except UNREACHABLE:  # claimed with the status change: `sopflow up`'s dispatcher starts them later
            pass
    return shown(result)
