"""`wait` step: record when the run may go on; the flow suspends until the waker resumes it."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from sopflow.durations import parse_duration
from sopflow.schema import WaitStep
from sopflow.store import runs, waits
from sopflow.store.db import transaction
from sopflow.store.models import utcnow
from tasks.records import Result, StepCall, complete, settled


@task(cache_policy=NO_CACHE)
def wake_time(call: StepCall) -> Result:
    """The step's settled result, or {"status": "waiting", "wake_at"} (set once, on the first call)."""
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
def woke(call: StepCall) -> Result:
    """Complete the wait step once its run goes on again."""
    with transaction() as session:
        done = settled(session, call)
        if done is not None:
            return done
        wait = waits.wait_for_step(session, call.run_id, call.step_id, utcnow())
        wait.done_at = utcnow()
        runs.set_state(session, call.run_id, "running")
        return complete(session, call, {"wake_at": wait.wake_at.isoformat(), "woke_at": wait.done_at.isoformat()},
                        wait.wake_at)
