"""`email` step: render the step's template into the outbox, once per run and step."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session

from sopflow import settings
from sopflow.schema import EmailStep
from sopflow.store.models import OutboxEmail
from sopflow.store.outbox import queue_email
from sopflow.templates import render_email
from tasks.records import Result, StepCall, once


def _queue(session: Session, call: StepCall, context: dict[str, Any]) -> Result:
    step = call.planned.step
    assert isinstance(step, EmailStep)
    rendered = render_email(settings.sop_dir() / "templates", step.template, context)
    email = queue_email(
        session,
        OutboxEmail(
            sop_run_id=call.run_id, step_id=call.step_id, lead_id=call.lead_id,
            to_address=context["lead"]["email"], subject=rendered.subject,
            body_text=rendered.text, body_html=rendered.html,
        ),
    )
    return {"outbox_id": email.id, "template": step.template}


@task(cache_policy=NO_CACHE)
def email(call: StepCall) -> Result:
    return once(call, _queue)
