"""Suspend the current flow run as Prefect's `suspend_flow_run` does, its Suspended state saying what it waits for.

Prefect's own proposes `Suspended(timeout_seconds, pause_key)` with no message; the Prefect UI shows a state's
message beside it, so this one proposes the same state with `message`. It also saves the input form before the
run shows paused, not after: an answer sent the moment the run paused was refused ("Run input schema not found").
Everything else is as Prefect's: no timeout, and a key whose pause was already resumed returns its input at once
instead of suspending again.
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

import httpx
from prefect._flow_run_suspension import mark_flow_run_suspension_requested
from prefect.client.orchestration import get_client
from prefect.context import FlowRunContext, TaskRunContext
from prefect.exceptions import Abort, Pause
from prefect.input import keyset_from_paused_state
from prefect.input.run_input import run_input_subclass_from_type
from prefect.logging.loggers import get_run_logger
from prefect.states import Suspended
from prefect.utilities.engine import propose_state_sync

T = TypeVar("T")


@overload
def suspend(message: str, key: str, wait_for_input: None = None) -> None: ...


@overload
def suspend(message: str, key: str, wait_for_input: type[T]) -> T: ...


def suspend(message: str, key: str, wait_for_input: type[T] | None = None) -> T | None:
    """Suspend this flow run under pause `key`, its state's message `message` (no personal data: the UI shows it).

    Raises Pause (the run's process ends; resuming re-executes the flow) unless the pause `key` was resumed
    already: then returns the input it was resumed with (None without `wait_for_input`).
    """
    context = FlowRunContext.get()
    if TaskRunContext.get() or context is None or context.flow_run is None:
        raise RuntimeError("suspend() works only in a flow run's own code, not in a task; call it from the flow")
    flow_run_id = context.flow_run.id
    proposed = Suspended(pause_key=key, message=message)
    if wait_for_input:
        wait_for_input = run_input_subclass_from_type(wait_for_input)
        keyset = keyset_from_paused_state(proposed)
        proposed.state_details.run_input_keyset = keyset
        _save_form(wait_for_input, keyset)
    with get_client(sync_client=True) as client:
        try:
            state = propose_state_sync(client=client, state=proposed, flow_run_id=flow_run_id)
        except Abort as exc:  # the orchestrator does not allow the suspension
            raise RuntimeError(f"Flow run cannot be suspended: {exc}") from exc
        if state.is_running():  # rejected: this pause happened before and the run was resumed
            return wait_for_input.load(keyset) if wait_for_input else None
        if not state.is_paused():
            raise RuntimeError(f"Flow run cannot be suspended. Received unexpected state from API: {state}")
    get_run_logger(context=context).info("Suspended: %s; the run goes on when resumed.", message)
    mark_flow_run_suspension_requested(flow_run_id, state)
    raise Pause(state=state)


def _save_form(run_input: Any, keyset: Any) -> None:
    """Save the form (schema, description) the answer is checked against; one saved by an earlier pass of the
    same pause (the run was resumed and runs its flow again) stays."""
    try:
        run_input.save(keyset)
    except httpx.HTTPStatusError as exc:
        if exc.response.status_code != 409:  # 409: this key exists already
            raise
