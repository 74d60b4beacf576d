"""The housekeeper: a thread of `sopflow up` that takes overdue approval actions and resends approval notices.

Every `poll_seconds` it takes the `overdue` actions that have come due (remind, escalate, decide: each once per
ask, whatever other `sopflow up` processes do), sends sopflow's answers to runs that did not take them yet, and
tries again the approval notices that could not go out (emails, channel posts), each after a growing pause.
"""

from __future__ import annotations

import logging
import threading

from sopflow.services.housekeeping import SlaKeeper
from sopflow.services.notices import Retrier

log = logging.getLogger(__name__)


class Housekeeper(threading.Thread):
    """Runs SLA rounds and notice retries every `poll_seconds` until `stop()`."""

    def __init__(self, poll_seconds: float = 1.0, pause_after_error: float = 30.0) -> None:
        super().__init__(name="sopflow-housekeeper", daemon=True)
        self.poll_seconds, self.pause_after_error = poll_seconds, pause_after_error
        self.sla, self.notices = SlaKeeper(), Retrier()
        self._stopping = threading.Event()

    def run(self) -> None:
        delay = self.poll_seconds
        while not self._stopping.wait(delay):
            delay = self.poll_seconds
            try:
                for done in self.sla.round():
                    log.info("Overdue approval: %s.", done)
            except Exception as exc:  # the store itself failed: say so in one line, keep the thread, try again
                log.warning("overdue approval actions failed (%s); next try in %.0f s", type(exc).__name__,
                            self.pause_after_error)
                delay = self.pause_after_error
            try:  # notices are retried whatever the SLA round did
                self.notices.round()
            except Exception as exc:
                log.warning("resending approval notices failed (%s); next try in %.0f s", type(exc).__name__,
                            self.pause_after_error)
                delay = self.pause_after_error

    def stop(self) -> None:
        self._stopping.set()
        self.join(timeout=30)
