"""Answering an approval ask: the one path `sopflow approve`, a signed link and an overdue `decide` share.

An answer is checked here (the step's typed inputs, the feedback) and sent to the paused run as its form's
input; the run's `answer` task records it and checks who answered, whoever sent it.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sopflow.forms import check_inputs, feedback_problem
from sopflow.schema import ApprovalStep, Sop
from sopflow.services.connection import prefect_api
from sopflow.services.nudge import ANSWERED, nudge_dispatcher


class ResumeFailed(RuntimeError):
    """The paused run could not be given the answer; nothing was recorded. The message is one sentence."""


class PrefectUnreachable(ResumeFailed):
    """Prefect could not be reached or answered garbled, so trying again later may work; nothing was recorded."""


def pause_key(step_id: str, ask: int) -> str:
    """The key an approval step's ask number `ask` suspends its run under."""
    return f"{step_id.replace('_', '-')}-ask-{ask}"


def approval_step(sop: Sop | None, step_id: str) -> ApprovalStep | None:
    """The approval step `step_id` of `sop`, or None when the SOP has no such step (any more)."""
    step = next((s for s in sop.steps if s.id == step_id), None) if sop else None
    return step if isinstance(step, ApprovalStep) else None


def answer_for(step: ApprovalStep, decision: str, approver: str, notes: str, given: dict[str, str],
               feedback: str = "") -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The run input of an answer (inputs typed as the form takes them), and every problem as (field, reason):
    an input that is missing, unknown or not of its type, or feedback that cannot be kept."""
    values, problems = check_inputs(step, given)
    if feedback and (problem := feedback_problem(feedback)):
        problems.append(("feedback", problem))
    answer = {**values, "decision": decision, "approver": approver, "notes": notes}
    return ({**answer, "feedback": feedback} if feedback else answer), problems


def send_answer(flow_run_id: str, answer: dict[str, Any], pause: str | None = None) -> None:
    """Resume paused flow run `flow_run_id` with `answer` as its form's input (the run records it).

    `pause`: only while the run waits under that pause key, i.e. for this very ask. Raises ResumeFailed when
    the run does not take it (not paused for it, refused, aborted), PrefectUnreachable (a ResumeFailed) when Prefect
    cannot be reached or answers garbled, PrefectUnavailable when no Prefect server is known.
    """
    import httpx
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.responses import SetStateStatus
    from prefect.exceptions import PrefectException

    with prefect_api():
        try:
            with get_client(sync_client=True) as client:
                state = client.read_flow_run(UUID(flow_run_id)).state
                if state is None or not state.is_paused() or (pause is not None
                                                              and state.state_details.pause_key != pause):
                    raise ResumeFailed(f"flow run {flow_run_id} is not waiting for this answer right now (it may be "
                                       "passing on another one); nothing was recorded")
                result = client.resume_flow_run(UUID(flow_run_id), run_input=answer)
        except ResumeFailed:
            raise
        except (httpx.HTTPError, PrefectException, TimeoutError, OSError, ValueError) as exc:  # ValueError: garbled
            lasting = isinstance(exc, PrefectException) or (isinstance(exc, httpx.HTTPStatusError)
                                                             and exc.response.status_code < 500)
            failed = ResumeFailed if lasting else PrefectUnreachable  # a refusal, or Prefect not answering sanely
            raise failed(f"could not resume flow run {flow_run_id}, so nothing was recorded: {exc}") from None
    if result.status != SetStateStatus.ACCEPT:  # REJECT (input refused, pause timed out) or ABORT (not paused)
        reason = getattr(result.details, "reason", None) or result.status.value
        raise ResumeFailed(f"flow run {flow_run_id} did not take the answer ({reason}), so nothing was recorded")
    nudge_dispatcher(ANSWERED)  # `sopflow up`'s runner picks the run up now, not at its next poll
