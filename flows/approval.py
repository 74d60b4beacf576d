"""Approval pauses: suspend the run (holding no process) until someone on the roster answers."""

from __future__ import annotations

from prefect.flow_runs import suspend_flow_run

from sopflow.services.answering import pause_key
from tasks.approval import answer, ask, form_for
from tasks.records import Result, StepCall


def await_decision(call: StepCall) -> Result:
    """Ask until an answer from the step's roster arrives; each ask is its own keyed pause.

    A suspended run restarts from the top when resumed: asks and answers already recorded
    come back from the store, and a keyed pause that was answered returns its input.
    """
    while True:
        asked = ask.with_options(name=call.step_id, task_run_name=f"{call.step_id} (ask)")(call)
        if asked["status"] != "waiting":
            return asked
        form = form_for(call.planned.step).with_initial_data(description=asked["description"])
        response = suspend_flow_run(wait_for_input=form, key=pause_key(call.step_id, asked["ask"]))
        answered = answer.with_options(name=call.step_id, task_run_name=f"{call.step_id} (answer)")(
            call, asked["ask_id"], response
        )
        if answered["status"] != "refused":
            return answered
