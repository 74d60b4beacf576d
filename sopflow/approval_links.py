"""Signed, single-use links to answer one approval ask as one person; every notice email carries a fresh one.

A token is `<link id>.<signature>`: HMAC-SHA256 under `settings.secret_key()` of the link's id, its ask, its
person and its expiry, all of which the store's row holds (never the token). A link works once, until it
expires, and only while its ask is open. Opening it changes nothing (mail scanners open every link); using
it checks and marks it used in one transaction, holding the ask's row, so two links never answer one ask.
Tokens and links are secrets: they never reach logs, flow parameters or artifacts.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from sopflow import settings
from sopflow.store import approval_links
from sopflow.store.models import Approval, ApprovalLink, SopRun, utcnow

GRACE = timedelta(days=1)  # past the ask's due time (or past sending, for notices sent later)
WITHOUT_DUE = timedelta(days=7)  # for an ask with no due time
_TOKEN = re.compile(r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([A-Za-z0-9_-]{43})")


class LinkRefused(Exception):
    """The link cannot answer: `status` (HTTP) and one sentence for the page; nothing was changed."""

    def __init__(self, status: int, sentence: str) -> None:
        super().__init__(sentence)
        self.status, self.sentence = status, sentence


MALFORMED = LinkRefused(400, "This is not a whole approval link; copy the entire link from your notice email.")
NOT_VALID = LinkRefused(403, "This approval link is not valid; open the link from your notice email, or answer in "
                             "the Prefect UI.")
USED = LinkRefused(410, "This approval link was used already: each link answers once; answer in the Prefect UI "
                        "if the approval still waits.")
ANSWERED = LinkRefused(409, "This approval has been answered already, so this link no longer answers it; nothing "
                            "was changed.")
NOT_WAITING = LinkRefused(409, "The run of this approval is not waiting for an answer any more (it moved on, or "
                               "was cancelled or failed), so this link cannot answer it; nothing was changed.")
EXPIRED = LinkRefused(410, "This approval link has expired; answer in the Prefect UI or with `sopflow approve`.")


def expiry(due_by: datetime | None, issued_at: datetime) -> datetime:
    """When a link issued at `issued_at` stops working: GRACE after the ask's due time, or after it was issued when
    that is later (reminders); WITHOUT_DUE after it was issued for an ask without a due time. Whole seconds."""
    end = max(due_by, issued_at) + GRACE if due_by is not None else issued_at + WITHOUT_DUE
    return end.replace(microsecond=0)


def issue(session: Session, ask: Approval, person: str, now: datetime | None = None) -> ApprovalLink:
    """A new link for `person` (the roster's spelling) to answer `ask`."""
    return approval_links.add_link(session, ask.id, person, expiry(ask.due_by, now or utcnow()))


def _signature(link_id: str, approval_id: int, person: str, expires_at: datetime) -> str:
    signed = json.dumps(["sopflow-approval-link", link_id, approval_id, person, int(expires_at.timestamp())])
    digest = hmac.new(settings.secret_key(), signed.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token(link: ApprovalLink) -> str:
    return f"{link.id}.{_signature(link.id, link.approval_id, link.person, link.expires_at)}"


def url(link: ApprovalLink) -> str:
    """The link as the notice shows it: sopflow's public address (the intake's), /approve/<token>."""
    return f"{settings.public_url()}/approve/{token(link)}"


@dataclass(frozen=True)
class OpenLink:
    """A valid, unused link of an open ask: what the page shows and the answer needs."""

    link: ApprovalLink
    ask: Approval
    run: SopRun


def check(session: Session, given: str, now: datetime | None = None, hold: bool = False) -> OpenLink:
    """The open link `given` names; LinkRefused when it is malformed, forged or tampered with, used, expired,
    or its ask is answered or its run is not waiting.
    `hold` locks the ask's row until the transaction ends (to use the link)."""
    found = _TOKEN.fullmatch(given) if len(given) < 100 else None
    if found is None:
        raise MALFORMED
    link = session.get(ApprovalLink, found.group(1))
    if link is None or not hmac.compare_digest(
            _signature(link.id, link.approval_id, link.person, link.expires_at).encode(), found.group(2).encode()):
        raise NOT_VALID
    ask = session.get_one(Approval, link.approval_id, with_for_update=hold, populate_existing=hold)
    if link.used_at is not None:
        raise USED
    if ask.answered_at is not None or approval_links.used_for(session, ask.id) is not None:
        raise ANSWERED
    if (now or utcnow()) >= link.expires_at:
        raise EXPIRED
    run = session.get_one(SopRun, ask.sop_run_id)
    if run.state != "waiting":
        raise NOT_WAITING
    return OpenLink(link, ask, run)


def mark_used(session: Session, opened: OpenLink, decision: str, now: datetime | None = None) -> None:
    """Mark a link `check`ed with `hold` used, answering `decision` (in the same transaction as the check)."""
    opened.link.used_at, opened.link.decision = now or utcnow(), decision
    session.flush()


def use(session: Session, given: str, decision: str, now: datetime | None = None) -> OpenLink:
    """Check link `given` and mark it used with `decision`, in the caller's transaction (see `check`)."""
    opened = check(session, given, now, hold=True)
    mark_used(session, opened, decision, now)
    return opened
