"""`task` step: call a function the team registered by name (SOPFLOW_TASKS); its result is recorded once."""

from __future__ import annotations

from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from sopflow import registry
from sopflow.mail import idempotency_key
from sopflow.schema import TaskStep
from tasks.records import Result, StepCall, once_outside
from tasks.step_runs import shown


class TaskFunctionError(RuntimeError):
    """A team's task function raised; says which one and what type of error, never the message."""


def _call(call: StepCall, context: dict[str, Any]) -> Result:
    step = call.planned.step
    assert isinstance(step, TaskStep)
    function = registry.load(step.function)
    try:
        result = function({**context, "params": dict(step.params), "idempotency_key": idempotency_key(call.run_id, step.id)})
    except Exception as exc:  # its message may quote the lead: logged masked, kept out of Prefect's state message
        get_run_logger().error("Task function %r failed.", step.function, exc_info=True)
        raise TaskFunctionError(f"task function {step.function!r} raised {type(exc).__name__}; "
                                "the run's log shows its message with personal data masked") from None
    if not isinstance(result, dict):
        raise TypeError(f"task function {step.function!r} returned {type(result).__name__}; it must return a dict")
    return result


@task(cache_policy=NO_CACHE)
def custom(call: StepCall) -> State:
    """The team function runs outside the store's transaction: a slow or hanging one holds up no other run."""
    return shown(once_outside(call, lambda context: _call(call, context)))
