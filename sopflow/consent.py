"""Consent: who may be emailed, and the signed unsubscribe link every email carries."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from sopflow import settings


def opted_out(do_not_contact: bool, unsubscribed: bool) -> str | None:
    """Why a lead must not be emailed, or None when it may be."""
    if do_not_contact:
        return "the lead is marked do-not-contact"
    if unsubscribed:
        return "the lead unsubscribed"
    return None


def unsubscribe_token(lead_id: str) -> str:
    return hmac.new(settings.secret_key(), lead_id.encode(), hashlib.sha256).hexdigest()[:32]


def token_is_valid(lead_id: str, token: str) -> bool:
    return hmac.compare_digest(unsubscribe_token(lead_id), token)


def unsubscribe_url(lead_id: str) -> str:
    return f"{settings.public_url()}/unsubscribe?{urlencode({'lead': lead_id, 'token': unsubscribe_token(lead_id)})}"


def with_unsubscribe(text: str, html: str | None, url: str) -> tuple[str, str | None]:
    """The bodies with the unsubscribe line every email carries."""
    line = f"You receive this email because you were in touch with our sales team. Unsubscribe: {url}"
    footer = f'<p style="font-size:12px;color:#666">You receive this email because you were in touch with ' \
             f'our sales team. <a href="{url}">Unsubscribe</a></p>'
    return f"{text}\n\n--\n{line}", (f"{html}\n{footer}" if html is not None else None)
