"""Deliver an outbox email (or an approval notice) exactly once, or say plainly that nobody knows whether it went out.

A row moves queued -> sending -> sent | failed | unconfirmed (transient errors: back to queued,
for the caller's retry). `sending` is committed before the transport is called, so a crash
between sending and recording leaves `sending` behind: an idempotent transport resends under
the same key (the provider dedupes); SMTP cannot, so the row becomes `unconfirmed`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

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


def _own_bodies(session: Session, row: Any) -> tuple[str, str | None]:
    return row.body_text, row.body_html


def _lead_opted_out(session: Session, row: OutboxEmail) -> str | None:
    lead = session.get(Lead, row.lead_id)
    if lead is not None and (getattr(lead, "do_not_contact", False) or getattr(lead, "unsubscribed_at", None)):
        return "not sent: the lead opted out of email"
    return None


@dataclass(frozen=True)
class Deliverable:
    """A table of messages to deliver: its rows have the outbox's columns (status, attempts, to_address, subject,
    body_text, body_html, headers, idempotency_key, last_error, provider_id, sent_at)."""

    model: type[Any]
    noun: str  # how logs and errors name a row: "outbox email 12"
    refuse: Callable[[Session, Any], str | None] = lambda session, row: None  # why a queued row must not go out
    bodies: Callable[[Session, Any], tuple[str, str | None]] = _own_bodies  # text and html as sent


OUTBOX = Deliverable(OutboxEmail, "outbox email", refuse=_lead_opted_out)


def deliver(outbox_id: int, transport: Transport, url: str | None = None) -> str:
    """Send outbox email `outbox_id` through `transport` at most once; return its final status.

    Returns 'sent', 'failed' (permanent error; see last_error) or 'unconfirmed' (see last_error).
    Raises DeliveryError for a transient error (the row is queued again: retry later), LookupError
    for an unknown id.
    """
    return deliver_row(OUTBOX, outbox_id, transport, url)


def deliver_row(kind: Deliverable, row_id: int, transport: Transport, url: str | None = None) -> str:
    """`deliver` for a row of any `Deliverable` table."""
    model = kind.model
    with transaction(url) as session:
        row = session.scalar(select(model).where(model.id == row_id).with_for_update())
        if row is None:
            raise LookupError(f"no {kind.noun} with id {row_id}")
        if row.status in FINAL:
            return row.status
        if row.status == "sending" and not transport.idempotent:
            row.status, row.last_error = "unconfirmed", UNCERTAIN
            log.warning("%s %s: %s", kind.noun, row_id, UNCERTAIN)
            return "unconfirmed"
        refused = kind.refuse(session, row) if row.status == "queued" else None
        if refused:
            row.status, row.last_error = "failed", refused
            return "failed"
        claim = (
            update(model)
            .where(model.id == row_id, model.status == row.status)
            .values(status="sending", attempts=model.attempts + 1)
        )
        if session.execute(claim).rowcount != 1:  # another worker changed the row since we read it
            return session.scalars(select(model.status).where(model.id == row_id)).one()
        text, html = kind.bodies(session, row)
        message = Message(
            idempotency_key=row.idempotency_key or idempotency_key(row.sop_run_id, row.step_id),
            to=row.to_address, sender=transport.sender, subject=header_text(row.subject),
            text=text, html=html, headers={name: header_text(value) for name, value in (row.headers or {}).items()},
        )
    # committed: from here on a crash leaves `sending`, which the next attempt handles
    try:
        provider_id = transport.send(message)
    except DeliveryError as exc:
        if exc.uncertain:
            _record(kind, url, row_id, "unconfirmed", f"{exc}; {UNCERTAIN}")
            return "unconfirmed"
        if exc.permanent:
            _record(kind, url, row_id, "failed", str(exc))
            return "failed"
        _record(kind, url, row_id, "queued", str(exc))
        # the server's words may quote the recipient: they stay in the row, out of Prefect's logs and states
        raise DeliveryError(f"{kind.noun} {row_id} could not be sent yet (transient); the reason is in its "
                            "last_error, and the next attempt sends it under the same key", permanent=False) from None
    _record(kind, url, row_id, "sent", None, provider_id=provider_id or None, sent_at=utcnow())
    log.info("%s %s sent via %s (%s)", kind.noun, row_id, type(transport).__name__, provider_id)
    return "sent"


def _record(kind: Deliverable, url: str | None, row_id: int, status: str, error: str | None, **values: object) -> None:
    """Write an attempt's outcome, unless the row moved on meanwhile (a known send beats a doubt)."""
    if status != "sent":
        # the server's words may quote the recipient: they stay in the row, out of the logs
        log.warning("%s %s: %s; the reason is in its row's last_error", kind.noun, row_id, status)
    allowed = ("sending", "unconfirmed") if status == "sent" else ("sending",)
    model = kind.model
    with transaction(url) as session:
        session.execute(
            update(model)
            .where(model.id == row_id, model.status.in_(allowed))
            .values(status=status, last_error=error, **values)
        )
