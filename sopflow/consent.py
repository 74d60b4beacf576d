"""Consent: who may be emailed, and the signed unsubscribe link every email carries."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from urllib.parse import urlencode

from sopflow import settings
from sopflow.leads import is_lead_id
from sopflow.store.db import transaction
from sopflow.store.models import Lead, utcnow


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
    """True when `token` signs `lead_id`; any text may be given (compared as UTF-8 bytes, in constant time)."""
    given = token.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(unsubscribe_token(lead_id).encode(), given)


INVALID_LINK = 400, "This unsubscribe link is not valid. Reply to the email and we will remove you by hand."
UNKNOWN_LEAD = 404, "We have no record of this address any more; you will not hear from us."
ASK_TO_CONFIRM = 200, "Press the button to stop all further emails from our sales team."
ALREADY_OUT = 200, "You are already unsubscribed: you will not receive more emails from our sales team."
UNSUBSCRIBED = 200, "You are unsubscribed: you will not receive more emails from our sales team."


def _for_signed_lead(lead_id: str, token: str, act: Callable[[Lead], tuple[int, str]]) -> tuple[int, str]:
    """`act` on the lead a valid link names, in one transaction; (HTTP status, sentence for the page)."""
    if not (is_lead_id(lead_id) and token_is_valid(lead_id, token)):
        return INVALID_LINK
    with transaction() as session:
        lead = session.get(Lead, lead_id)
        return UNKNOWN_LEAD if lead is None else act(lead)


def link_status(lead_id: str, token: str) -> tuple[int, str]:
    """What an unsubscribe link would do, changing nothing (link scanners open every link they see)."""
    return _for_signed_lead(lead_id, token, lambda lead: ALREADY_OUT if lead.unsubscribed_at else ASK_TO_CONFIRM)


def unsubscribe(lead_id: str, token: str) -> tuple[int, str]:
    """Honour a signed unsubscribe link: the lead is never emailed again."""

    def opt_out(lead: Lead) -> tuple[int, str]:
        lead.unsubscribed_at = lead.unsubscribed_at or utcnow()
        return UNSUBSCRIBED

    return _for_signed_lead(lead_id, token, opt_out)


def unsubscribe_url(lead_id: str) -> str:
    return f"{settings.public_url()}/unsubscribe?{urlencode({'lead': lead_id, 'token': unsubscribe_token(lead_id)})}"


def with_unsubscribe(text: str, html: str | None, url: str) -> tuple[str, str | None]:
    """The bodies with the unsubscribe line every email carries."""
    line = f"You receive this email because you were in touch with our sales team. Unsubscribe: {url}"
    footer = f'<p style="font-size:12px;color:#666">You receive this email because you were in touch with ' \
             f'our sales team. <a href="{url}">Unsubscribe</a></p>'
    return f"{text}\n\n--\n{line}", (f"{html}\n{footer}" if html is not None else None)
