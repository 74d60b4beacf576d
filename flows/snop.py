"""S&OP: a monthly run compares the pipeline's demand with operations' capacity and waits for the sales and
operations leaders to sign the plan off. One plan per month, whichever runs claim it."""

from __future__ import annotations

from datetime import datetime, timezone

from prefect import flow, get_run_logger
from prefect.client.schemas.objects import State
from prefect.flow_runs import suspend_flow_run
from prefect.runtime import flow_run
from prefect.states import Completed, Failed

from sopflow.logs import redact_everywhere
from sopflow.snop import month_of
from sopflow.store.snop import ROLES
from tasks.snop import SignOffForm, open_plan, sign_off, sign_off_description


def plan_month(month: str | None = None) -> str:
    """`month` when given, else the month (UTC) this run was scheduled for: the schedule's 1st of the month, even
    when the run starts late; a run started by hand plans the current month."""
    if month:
        return month
    scheduled = flow_run.scheduled_start_time
    return month_of(scheduled if isinstance(scheduled, datetime) else datetime.now(timezone.utc))


def _run_name() -> str:
    return f"snop-{plan_month(flow_run.parameters.get('month'))}"


@flow(name="sopflow-snop", flow_run_name=_run_name, persist_result=False)
def snop(month: str | None = None) -> State:
    """Plan `month` (YYYY-MM; default: the month the run is scheduled in): demand by expected close month against
    capacity, as artifacts and in the sign-off forms; then wait for sales, then operations, to sign it off."""
    redact_everywhere()
    opened = open_plan(plan_month(month))
    if opened["status"] == "invalid":
        get_run_logger().error("%s", opened["reason"])
        return Failed(message=opened["reason"])
    if opened["status"] == "elsewhere":
        get_run_logger().warning("%s", opened["reason"])
        return Completed(message=opened["reason"])
    for role in ROLES:  # re-executed from the top on resume: answered keys return their input
        refusals: list[str] = []
        while opened["signed"][role] is None:
            form = SignOffForm.with_initial_data(description=sign_off_description(opened, role, refusals))
            response = suspend_flow_run(wait_for_input=form, key=f"{role}-{len(refusals)}")
            answered = sign_off(opened["plan_id"], role, response)
            if answered["status"] == "refused":
                refusals.append(answered["reason"])
            else:
                opened = answered
    return Completed(message=opened["words"], data={"month": opened["month"], "state": opened["state"]})
