"""Sending approval notices: emails through the configured transport, channel posts through Prefect notification
blocks. A notice that cannot go out yet is logged in one sentence and left queued for housekeeping; sending a
notice never fails the run that asked."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import ClassVar

from sopflow.mail import DeliveryError, Message, transport_from_settings
from sopflow.mail.delivery import deliver_row
from sopflow.notify import NOTICES
from sopflow.services.connection import prefect_api
from sopflow.store import notices
from sopflow.store.db import transaction
from sopflow.store.models import ApprovalNotice

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8  # then a notice is marked failed, its last error kept
MAX_BACKOFF = 300.0  # seconds between housekeeping's tries of one notice
STALE_SENDING = 600.0  # seconds a notice may stay "sending" at one attempt before its sender is taken for dead


class BlockTransport:
    """Posts a notice with a Prefect notification block (`<block-type-slug>/<block-name>`): `notify(body, subject)`."""

    idempotent: ClassVar[bool] = False  # a second post is a second message in the channel
    sender = "sopflow"

    def __init__(self, slug: str) -> None:
        self.slug = slug

    def __repr__(self) -> str:
        return f"BlockTransport({self.slug})"

    def send(self, message: Message) -> str:
        from prefect.blocks.abstract import NotificationBlock
        from prefect.blocks.core import Block

        try:
            with prefect_api():
                block = Block.load(self.slug)
                if not isinstance(block, NotificationBlock):
                    raise DeliveryError(f"block {self.slug} is not a notification block; name one such as "
                                        "slack-webhook/<name> in the SOP's notify", permanent=True)
                with block.raise_on_failure():
                    block.notify(message.text, message.subject)
        except DeliveryError:
            raise
        except Exception as exc:  # its message may quote the webhook URL, a secret: only its type goes on record
            raise DeliveryError(f"notification block {self.slug} did not post ({type(exc).__name__}); check that "
                                "the block exists in Prefect and its channel answers", permanent=False) from None
        return self.slug


def send(notice_ids: Iterable[int]) -> dict[int, str]:
    """Deliver each notice once; each one's status ('queued': it waits for housekeeping). Never raises."""
    outcome = {}
    for notice_id in notice_ids:
        try:
            with transaction() as session:
                notice = session.get_one(ApprovalNotice, notice_id)
                channel, address = notice.channel, notice.to_address
            transport = BlockTransport(address) if channel == "block" else transport_from_settings()
            outcome[notice_id] = deliver_row(NOTICES, notice_id, transport)
        except DeliveryError:  # transient: deliver_row logged it and left it queued
            outcome[notice_id] = "queued"
        except Exception as exc:  # a transport that is not set up, the store busy: the notice waits
            log.warning("approval notice %s did not go out yet (%s); housekeeping tries again", notice_id,
                        type(exc).__name__)
            outcome[notice_id] = "queued"
    return outcome


class Retrier:
    """Housekeeping's retries of queued notices: each after a pause that doubles with its tries, at most
    MAX_ATTEMPTS tries in all (then it is marked failed). A notice this process has seen "sending" at the same
    attempt for STALE_SENDING seconds lost its sender: it goes to delivery again, which resends it when the
    transport is idempotent and marks it unconfirmed otherwise."""

    def __init__(self) -> None:
        self._tried: dict[int, float] = {}  # notice id -> when this process last tried it (monotonic)
        self._sending: dict[int, tuple[int, float]] = {}  # notice id -> (attempts, first seen "sending" then)

    def round(self) -> dict[int, str]:
        with transaction() as session:
            gave_up = notices.give_up(session, MAX_ATTEMPTS)
            waiting = notices.queued(session)
            claimed = notices.sending(session)
        for notice_id in gave_up:
            log.warning("approval notice %s failed after %d tries; its last error is in its row", notice_id,
                        MAX_ATTEMPTS)
        now = time.monotonic()
        due = [notice_id for notice_id, attempts in waiting
               if now >= self._tried.get(notice_id, -MAX_BACKOFF) + min(MAX_BACKOFF, 2.0 ** attempts)]
        self._tried.update((notice_id, now) for notice_id in due)
        return send(due + self._stale(claimed, now))

    def _stale(self, claimed: list[tuple[int, int]], now: float) -> list[int]:
        """The notices of `claimed` seen "sending" at the same attempt for STALE_SENDING seconds or more."""
        previous, self._sending = self._sending, {}
        for notice_id, attempts in claimed:
            was = previous.get(notice_id)
            self._sending[notice_id] = was if was is not None and was[0] == attempts else (attempts, now)
        stale = [notice_id for notice_id, (_, since) in self._sending.items() if now - since >= STALE_SENDING]
        for notice_id in stale:
            log.warning("approval notice %s was left sending by a sender that stopped; delivery settles it now",
                        notice_id)
            del self._sending[notice_id]
        return stale
