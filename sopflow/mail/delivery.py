"""Deliver an outbox email exactly once, or say plainly that nobody knows whether it went out.

An outbox row moves queued -> sending -> sent | failed | unconfirmed (transient errors: back to
queued, for the caller's retry). `sending` is committed before the transport is called, so a
crash between sending and recording leaves `sending` behind: an idempotent transport resends
under the same key (the provider dedupes); SMTP cannot, so the row becomes `unconfirmed`.
"""

from __future__ import annotations

import logging

from sqlalchemy import select, update

from sopflow.mail.transports import DeliveryError, Message, Transport
from sopflow.store.db import transaction
from sopflow.store.models import Lead, OutboxEmail, utcnow
from sopflow.text import header_text

log = logging.getLogger(__name__)

FINAL = ("sent", "failed", "unconfirmed")
UNCERTAIN = (
    "delivery is uncertain: an earlier attempt handed the email to the SMTP server but stopped before "
    "recording the outcome, and SMTP cannot be safely resent; check the mail server's log or ask the "
    "recipient, then set the status to 'sent' (or 'queued' to send it again)"
)


def idempotency_key(sop_run_id: str, step_id: str) -> str:
    """The key an email keeps across every attempt: one per (run, step)."""
    return f"sopflow-{sop_run_id}-{step_id}"


def deliver(outbox_id: int, transport: Transport, url: str | None = None) -> str:
    """Send outbox email `outbox_id` through `transport` at most once; return its final status.

    Returns 'sent', 'failed' (permanent error; see last_error) or 'unconfirmed' (see last_error).
    Raises DeliveryError for a transient error (the row is queued again: retry later), LookupError
    for an unknown id.
    """
    with transaction(url) as session:
        row = session.scalar(select(OutboxEmail).where(OutboxEmail.id == outbox_id).with_for_update())
        if row is None:
            raise LookupError(f"no outbox email with id {outbox_id}")
        if row.status in FINAL:
            return row.status
        if row.status == "sending" and not transport.idempotent:
            row.status, row.last_error = "unconfirmed", UNCERTAIN
            log.warning("outbox email %s: %s", outbox_id, UNCERTAIN)
            return "unconfirmed"
        lead = session.get(Lead, row.lead_id) if row.status == "queued" else None
        if lead is not None and (getattr(lead, "do_not_contact", False) or getattr(lead, "unsubscribed_at", None)):
            row.status, row.last_error = "failed", "not sent: the lead opted out of email"
            return "failed"
        claim = (
            update(OutboxEmail)
            .where(OutboxEmail.id == outbox_id, OutboxEmail.status == row.status)
            .values(status="sending", attempts=OutboxEmail.attempts + 1)
        )
        if session.execute(claim).rowcount != 1:  # another worker changed the row since we read it
            return session.scalars(select(OutboxEmail.status).where(OutboxEmail.id == outbox_id)).one()
        message = Message(
            idempotency_key=row.idempotency_key or idempotency_key(row.sop_run_id, row.step_id),
            to=row.to_address, sender=transport.sender, subject=header_text(row.subject),
            text=row.body_text, html=row.body_html,
            headers={name: header_text(value) for name, value in (row.headers or {}).items()},
        )
    # committed: from here on a crash leaves `sending`, which the next attempt handles
    try:
        provider_id = transport.send(message)
    except DeliveryError as exc:
        if exc.uncertain:
            _record(url, outbox_id, "unconfirmed", f"{exc}; {UNCERTAIN}")
            return "unconfirmed"
        if exc.permanent:
            _record(url, outbox_id, "failed", str(exc))
            return "failed"
        _record(url, outbox_id, "queued", str(exc))
        # the server's words may quote the recipient: they stay in the row, out of Prefect's logs and states
        raise DeliveryError(f"outbox email {outbox_id} could not be sent yet (transient); the reason is in "
                            "its last_error, and the next attempt sends it under the same key", permanent=False) from None
    _record(url, outbox_id, "sent", None, provider_id=provider_id or None, sent_at=utcnow())
    log.info("outbox email %s sent via %s (%s)", outbox_id, type(transport).__name__, provider_id)
    return "sent"


def _record(url: str | None, outbox_id: int, status: str, error: str | None, **values: object) -> None:
    """Write an attempt's outcome, unless the row moved on meanwhile (a known send beats a doubt)."""
    if status != "sent":
        # the server's words may quote the recipient: they stay in the outbox row, out of the logs
        log.warning("outbox email %s: %s; the reason is in the outbox row's last_error", outbox_id, status)
    allowed = ("sending", "unconfirmed") if status == "sent" else ("sending",)
    with transaction(url) as session:
        session.execute(
            update(OutboxEmail)
            .where(OutboxEmail.id == outbox_id, OutboxEmail.status.in_(allowed))
            .values(status=status, last_error=error, **values)
        )
