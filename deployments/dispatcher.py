"""The dispatcher: starts the flow runs of claimed SOP runs and wakes runs whose wait is over, whatever Prefect's mood.

The intake only stores a lead and claims its runs, so it answers at once, and nudges this thread (in
`sopflow up`), which creates their flow runs and wakes the runner. When Prefect is down it backs off and tries
again; when Prefect is slow or refuses some requests it keeps going as long as runs still start. Claimed
runs wait in the store meanwhile: none is lost, none is started twice. It also resumes the
suspended runs whose `wait` step is due, so no scheduled flow fills the run history with chores.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection

from flows.waiting import wake_due_runs
from sopflow.services.nudge import ANSWERED, CLAIMED, NudgeInbox, send_nudge
from sopflow.services.starting import UNREACHABLE, scheduled_backlog, start_claimed
from sopflow.store import runs
from sopflow.store.db import transaction

log = logging.getLogger(__name__)
BATCH = 50  # flow runs created per round (one request to Prefect), then the runner is woken; a full round goes again
RECHECK_SECONDS = 0.5  # while enough runs wait for the runner, how soon to look again, however long `poll_seconds` is


class Dispatcher(threading.Thread):
    """Polls the store every `poll_seconds`, and at once when nudged on `port` (`sopflow.services.nudge`): starts
    claimed runs of the served SOPs, resumes runs whose wait is due. Calls `wake_runner` when it created flow runs
    or was told an approval was answered. With `ahead`, it keeps at most that many flow runs waiting in Prefect for
    the runner: a burst's other runs wait in the store, so each poll of the runner stays small."""

    def __init__(self, sop_ids: Collection[str], poll_seconds: float = 1.0, max_backoff_seconds: float = 30.0,
                 wake_runner: Callable[[], None] = lambda: None, ahead: int | None = None) -> None:
        super().__init__(name="sopflow-dispatcher", daemon=True)
        self.sop_ids = frozenset(sop_ids)
        self.ahead = ahead  # at most this many flow runs waiting in Prefect for the runner (None: no cap)
        self.poll_seconds, self.max_backoff_seconds = poll_seconds, max_backoff_seconds
        self.wake_runner = wake_runner
        self._stopping = threading.Event()
        self._inbox = NudgeInbox()
        self.port = self._inbox.port

    def run(self) -> None:
        delay, failures = 0.0, 0
        try:
            while not self._stopping.is_set():
                if failures:  # backing off from Prefect: a nudge does not cut the wait short
                    self._stopping.wait(delay)
                elif delay and ANSWERED in self._inbox.wait(delay):
                    self.wake_runner()  # the answered run is scheduled again
                if self._stopping.is_set():
                    return
                try:
                    delay, failures = self._round(failures)
                except Exception:  # the store itself failed: say so, keep the thread alive, try again later
                    log.exception("starting claimed SOP runs failed; next try in %.0f s", self.max_backoff_seconds)
                    delay, failures = self.max_backoff_seconds, max(failures, 1)
        finally:
            self._inbox.close()

    def _round(self, failures: int) -> tuple[float, int]:
        """Wake due runs, start up to BATCH claimed runs; return the delay before the next round and the failures in a row."""
        woken = wake_due_runs()
        if woken:
            self.wake_runner()
            log.info("Woke %d run(s) whose wait is over.", len(woken))
        with transaction() as session:
            waiting = runs.unstarted(session, self.sop_ids)
        if not waiting:
            return self.poll_seconds, 0
        try:
            room = BATCH if self.ahead is None else min(BATCH, self.ahead - scheduled_backlog(self.sop_ids))
            if room <= 0:  # the runner has enough to take: hundreds waiting would make each of its polls slow
                self.wake_runner()  # it takes them as soon as a slot is free (a no-op while none is)
                return min(self.poll_seconds, RECHECK_SECONDS), 0
            started, error = len(start_claimed(limit=room, sop_ids=self.sop_ids)), None
        except UNREACHABLE as exc:  # what was created before it failed keeps its flow run
            started, error = 0, exc
        with transaction() as session:
            left = runs.unstarted(session, self.sop_ids)
        progressed = started > 0 or waiting > left  # not the counts alone: the intake claims runs meanwhile
        if progressed:
            self.wake_runner()
            log.info("Started %d claimed SOP run(s); %d wait.", started or waiting - left, left)
        if error is None:
            return (0.0 if progressed and left else self.poll_seconds), 0
        if progressed:  # Prefect takes runs, if not every request: go on after a breath
            return self.poll_seconds / 4, 0
        delay = min(self.max_backoff_seconds, self.poll_seconds * 2 ** (failures + 1))
        log.warning("Prefect did not take new SOP runs (%s); %d wait in the store, next try in %.0f s",
                    type(error).__name__, left, delay)
        return delay, failures + 1

    def stop(self) -> None:
        self._stopping.set()
        send_nudge(self.port, CLAIMED)  # ends a wait for nudges at once
        self.join(timeout=30)
