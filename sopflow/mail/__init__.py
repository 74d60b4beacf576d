"""Email delivery, free of Prefect: `deliver(outbox_id, transport_from_settings())` sends one outbox email once."""

from sopflow.mail.delivery import deliver, idempotency_key
from sopflow.mail.transports import (
    DeliveryError,
    HttpTransport,
    Message,
    OutboxTransport,
    SmtpTransport,
    Transport,
    mime_message,
    transport_from_settings,
)

__all__ = [
    "DeliveryError", "HttpTransport", "Message", "OutboxTransport", "SmtpTransport", "Transport",
    "deliver", "idempotency_key", "mime_message", "transport_from_settings",
]
