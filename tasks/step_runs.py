"""A step as the Prefect UI shows it: one task run, named by the step id, ending in a state that says what happened.

A step task returns its result inside a Completed state (`shown`): Prefect gives the caller that state object
itself, its data the result dict (kept in memory, never sent to the API), which `run_step` unwraps.
"""

from __future__ import annotations

from typing import Any

from prefect import Task, task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.states import Completed

from tasks.records import Result, StepCall


def shown(result: Result, name: str = "Completed", message: str | None = None) -> State:
    """The step task's end state: "Skipped" with the reason as its message when the step was skipped, else `name`
    with `message`; its data the result."""
    if result["status"] == "skipped":
        return Completed(name="Skipped", message=result.get("reason"), data=result)
    return Completed(name=name, message=message, data=result)


def run_step(step_task: Task[..., State], call: StepCall, *args: Any) -> Result:
    """Run `step_task` for `call` as the step's task run, named by the step id; the step's result."""
    return step_task.with_options(name=call.step_id, task_run_name=call.step_id)(call, *args).result()


@task(cache_policy=NO_CACHE)
def report(call: StepCall, result: Result) -> State:
    """Show a step that flow code settled (an approval or wait skipped by its condition) as its task run."""
    return shown(result)
