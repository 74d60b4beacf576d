"""`email` step: render into the outbox once per run and step, then deliver it exactly once.

A lead marked do-not-contact or unsubscribed is never emailed: the step records why it
skipped. Transient delivery failures retry with backoff; permanent ones are recorded.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from sqlalchemy.orm import Session

from sopflow import settings
from sopflow.consent import opted_out, unsubscribe_url, with_unsubscribe
from sopflow.mail import DeliveryError, deliver, idempotency_key, transport_from_settings
from sopflow.schema import EmailStep
from sopflow.store.leads import get_lead
from sopflow.store.models import OutboxEmail
from sopflow.store.outbox import queue_email
from sopflow.templates import render_email
from tasks.records import Result, SkipStep, StepCall, once
from tasks.retries import retry_on
from tasks.step_runs import shown


def _queue(session: Session, call: StepCall, context: dict[str, Any]) -> Result:
    step = call.planned.step
    assert isinstance(step, EmailStep)
    lead = get_lead(session, call.lead_id)
    reason = opted_out(lead.do_not_contact, lead.unsubscribed_at is not None)
    if reason:
        raise SkipStep(f"not emailed: {reason}")
    url = unsubscribe_url(lead.id)
    rendered = render_email(settings.sop_dir() / "templates", step.template, context)
    text, html = with_unsubscribe(rendered.text, rendered.html, url)
    email = queue_email(session, OutboxEmail(
        sop_run_id=call.run_id, step_id=call.step_id, lead_id=call.lead_id, to_address=lead.email,
        subject=rendered.subject, body_text=text, body_html=html,
        headers={"List-Unsubscribe": f"<{url}>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}, idempotency_key=idempotency_key(call.run_id, call.step_id),
    ))
    return {"outbox_id": email.id, "template": step.template}


@task(cache_policy=NO_CACHE, **retry_on(lambda exc: isinstance(exc, DeliveryError) and not exc.permanent))
def email(call: StepCall) -> State:
    result = once(call, _queue)
    if result["status"] == "completed":
        result["delivery"] = deliver(result["outbox_id"], transport_from_settings())
    return shown(result)
