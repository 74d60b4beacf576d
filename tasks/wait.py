"""`wait` step: record when the run may go on; the flow suspends until the waker resumes it."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from sopflow.durations import parse_duration
from sopflow.schema import WaitStep
from sopflow.state_messages import woke as woke_words
from sopflow.store import runs, waits
from sopflow.store.db import transaction
from sopflow.store.models import utcnow
from tasks.records import Result, StepCall, complete, settled
from tasks.step_runs import shown


def wake_time(call: StepCall) -> Result:
    """The step's settled result, or {"status": "waiting", "wake_at", "due"} (set once, on the first call).

    Flow code, no task run: a waiting run calls it again each time it re-executes.
    """
    step = call.planned.step
    assert isinstance(step, WaitStep)
    with transaction() as session:
        done = settled(session, call)
        if done is not None:
            return done
        wait = waits.wait_for_step(session, call.run_id, step.id, utcnow() + parse_duration(step.duration))
        runs.set_state(session, call.run_id, "waiting")
        return {"status": "waiting", "wake_at": wait.wake_at.isoformat(), "due": wait.wake_at <= utcnow()}


@task(cache_policy=NO_CACHE)
def woke(call: StepCall) -> State:
    """Complete the wait step once its run goes on again; the state says when it woke."""
    with transaction() as session:
        done = settled(session, call)
        if done is not None:
            return shown(done)
        wait = waits.wait_for_step(session, call.run_id, call.step_id, utcnow())
        wait.done_at = utcnow()
        runs.set_state(session, call.run_id, "running")
        result = complete(session, call, {"wake_at": wait.wake_at.isoformat(), "woke_at": wait.done_at.isoformat()},
                          wait.wake_at)
        return shown(result, message=woke_words(wait.done_at))
