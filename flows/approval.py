"""Approval pauses: suspend the run (holding no process) until someone on the roster answers."""

from __future__ import annotations

from prefect import get_run_logger

from flows.suspend import suspend
from sopflow.services.answering import pause_key
from tasks.approval import Refused, answer, approver_of, ask, form_for
from tasks.records import Result, StepCall
from tasks.step_runs import report, run_step


def await_decision(call: StepCall) -> Result:
    """Ask until an answer from the step's roster arrives; each ask is its own keyed pause.

    The step's one task run is the accepted answer (or its skip); asking and refused answers are flow code, a
    refusal logged. A suspended run restarts from the top when resumed: asks and answers already recorded come
    back from the store, and a keyed pause that was answered returns its input.
    """
    while True:
        asked = ask(call)
        if asked["status"] != "waiting":
            return run_step(report, call, asked)
        form = form_for(call.planned.step).with_initial_data(description=asked["description"])
        response = suspend(asked["waiting_for"], pause_key(call.step_id, asked["ask"]), wait_for_input=form)
        try:
            approver = approver_of(call, asked["ask_id"], response)
        except Refused as refused:
            get_run_logger().warning("Answer to %s (ask %s) refused: %s.", call.step_id, asked["ask"], refused)
            continue
        return run_step(answer, call, asked["ask_id"], response, approver)
