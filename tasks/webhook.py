"""`webhook` step: POST the lead or an earlier step's result, with an idempotency key, retried."""

from __future__ import annotations

import os
from typing import Any

import httpx
from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State

from sopflow.schema import WebhookStep
from tasks.records import Result, SkipStep, StepCall, once_outside
from tasks.retries import retry_on
from tasks.step_runs import shown

TIMEOUT = httpx.Timeout(10.0, connect=5.0)


class TransientWebhookError(RuntimeError):
    """The endpoint may accept the same request later; the task retries it with backoff."""


def resolve(reference: str, step_id: str) -> str:
    """The value behind `env:NAME` or `secret:NAME` (a Prefect Secret block); never logged."""
    source, _, name = reference.partition(":")
    if source == "env":
        value = os.environ.get(name)
        if not value:
            raise RuntimeError(f"webhook step {step_id} needs the environment variable {name}; set it where flows run")
        return value
    from prefect.blocks.system import Secret

    return str(Secret.load(name).get())


def _payload(step: WebhookStep, context: dict[str, Any]) -> Any:
    if step.send == "lead":
        return {"lead": context["lead"], "sop": context["sop"]}
    step_id = step.send.removeprefix("steps.")
    return {"lead_id": context["lead"]["id"], "step": step_id, "result": context["steps"].get(step_id), "sop": context["sop"]}


def _post(call: StepCall, step: WebhookStep, payload: Any) -> httpx.Response:
    url = step.url if step.url.startswith("http") else resolve(step.url, step.id)
    headers = {"Idempotency-Key": f"sopflow-{call.run_id}-{call.step_id}"}
    if step.auth:
        headers["Authorization"] = f"Bearer {resolve(step.auth, step.id)}"
    try:
        response = httpx.post(url, json=payload, headers=headers, timeout=TIMEOUT)
    except httpx.TransportError as exc:  # connection refused, timeout: worth retrying
        raise TransientWebhookError(f"webhook step {step.id}: {type(exc).__name__} talking to the endpoint") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise TransientWebhookError(f"webhook step {step.id}: endpoint answered {response.status_code}")
    return response


@task(cache_policy=NO_CACHE, **retry_on(lambda exc: isinstance(exc, TransientWebhookError)))  # a refusal is final
def webhook(call: StepCall) -> State:
    return shown(_deliver(call))


def _deliver(call: StepCall) -> Result:
    """Deliver once: a crash between the POST and its record resends with the same idempotency key."""
    step = call.planned.step
    assert isinstance(step, WebhookStep)

    def post(context: dict[str, Any]) -> Result:
        if step.url.startswith("env:") and not os.environ.get(step.url.removeprefix("env:")):
            # Not configured where flows run: say so in the record instead of failing the run.
            raise SkipStep(f"{step.url.removeprefix('env:')} is not set; nothing sent")
        response = _post(call, step, _payload(step, context))
        result: Result = {"delivered": response.is_success, "http_status": response.status_code}
        if not response.is_success:
            result["error"] = f"endpoint refused the request ({response.status_code}); not retried"
        return result
    return once_outside(call, post)
