"""Overdue approval asks: take each `overdue` action of their step once, when it is due.

remind and escalate queue their notices in the transaction that claims the action, so a claim is also its
effect; decide claims first and then sends sopflow's answer to the paused run through the same path as
`sopflow approve`, trying again in later rounds until the run takes it or the ask is answered otherwise.
Claims are unique per (ask, action index), so any number of `sopflow up` processes may run this.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from sopflow import notify
from sopflow.roster import SOPFLOW
from sopflow.schema import ApprovalStep, Decide, Escalate, Sop
from sopflow.services.answering import ResumeFailed, approval_step, pause_key, send_answer
from sopflow.services.connection import PrefectUnavailable
from sopflow.services.notices import send
from sopflow.sla import DueAction, due_actions
from sopflow.store import sla as sla_store
from sopflow.store.db import transaction
from sopflow.store.models import Approval, ApprovalLink, SopRun, utcnow
from sopflow.versioning import sop_of_run

log = logging.getLogger(__name__)
MAX_BACKOFF = 60.0  # seconds between tries at sending one decide action's answer
MAX_DECIDE_ATTEMPTS = 20  # then it is left to a person (its last error says why)


def overdue_asks(session: Session, now: datetime) -> list[tuple[Approval, SopRun]]:
    """Open asks past their due time, of runs that wait for them, and no answer through a link on its way."""
    link_used = exists().where(ApprovalLink.approval_id == Approval.id, ApprovalLink.used_at.is_not(None))
    query = (select(Approval, SopRun).join(SopRun, SopRun.id == Approval.sop_run_id)
             .where(Approval.answered_at.is_(None), Approval.due_by.is_not(None), Approval.due_by <= now,
                    SopRun.state == "waiting", ~link_used)
             .order_by(Approval.due_by, Approval.id))
    return [(ask, run) for ask, run in session.execute(query)]


def _take(session: Session, sop: Sop, step: ApprovalStep, ask: Approval, due: DueAction) -> list[int] | None:
    """Claim `due` for `ask` and do what it does in the store; the notices it queued, or None when taken already."""
    action = due.action
    if isinstance(action, Decide):
        detail = {"decision": action.decision, "reason": action.reason}
        return [] if sla_store.claim(session, ask.id, due.index, "decide", detail, due.due_at) else None
    occasion = (notify.on_escalate(action.to, due.index) if isinstance(action, Escalate)
                else notify.on_remind(session, sop, step, ask, due.index))
    people = sorted({person for role in occasion.roles for person in sop.emails(role)})
    detail = {"to": action.to, "people": people} if isinstance(action, Escalate) else {"people": people}
    claimed = sla_store.claim(session, ask.id, due.index, action.action, detail, due.due_at)
    return None if claimed is None else notify.queue(session, sop, step, ask, occasion)


@dataclass
class SlaKeeper:
    """One `sopflow up` process's share of the SLA work; `round()` is called every second or so."""

    _tried: dict[int, float] = field(default_factory=dict)  # decide action id -> when this process last sent it

    def round(self, now: datetime | None = None) -> list[str]:
        """Take the due actions, send their notices and sopflow's answers; what was done, in words (ids only)."""
        now = now or utcnow()
        done, queued = [], []
        with transaction() as session:
            sops: dict[tuple[str, str | None], Sop | None] = {}
            for ask, run in overdue_asks(session, now):
                ask_id = ask.id
                try:
                    with session.begin_nested():  # one ask that fails rolls back only its own actions
                        ask_done, ask_queued = self._take_due(session, sops, ask, run, now)
                except Exception as exc:
                    log.warning("overdue actions of approval ask %s failed (%s); they are tried again next round",
                                ask_id, type(exc).__name__)
                    continue
                done += ask_done
                queued += ask_queued
        send(queued)
        return done + self._send_decisions()

    @staticmethod
    def _take_due(session: Session, sops: dict[tuple[str, str | None], Sop | None], ask: Approval, run: SopRun,
                  now: datetime) -> tuple[list[str], list[int]]:
        """Take `ask`'s due actions not taken yet: what was done, in words, and the notices they queued."""
        done: list[str] = []
        queued: list[int] = []
        key = (run.sop_id, run.sop_hash)
        sop = sops[key] if key in sops else sops.setdefault(key, sop_of_run(session, run))
        step = approval_step(sop, ask.step_id)
        if sop is None or step is None or not step.overdue:
            return done, queued
        taken = sla_store.taken_for_step(session, run.id, step.id)
        for due in due_actions(step, ask.due_by, now):
            if due.index in taken:
                continue
            notices = _take(session, sop, step, ask, due)
            if notices is not None:
                queued += notices
                done.append(f"{due.action.action} of ask {ask.id} ({run.sop_id}/{ask.step_id})")
        return done, queued

    def _send_decisions(self) -> list[str]:
        """Send each claimed decide action's answer to its run (again, after a pause, when it did not get through)."""
        with transaction() as session:
            pending = [(a.id, a.attempts, a.detail, ask.step_id, ask.ask, run.flow_run_id)
                       for a, ask, run in sla_store.decides_to_send(session)]
        sent = []
        for action_id, attempts, detail, step_id, ask_number, flow_run_id in pending:
            now = time.monotonic()
            waited = now >= self._tried.get(action_id, -MAX_BACKOFF) + min(MAX_BACKOFF, 2.0 ** attempts)
            if flow_run_id is None or attempts >= MAX_DECIDE_ATTEMPTS or not waited:
                continue
            with transaction() as session:  # one sender per attempt, whatever other processes do
                if not sla_store.lease_decide(session, action_id, attempts):
                    continue
            self._tried[action_id] = now
            answer = {"decision": detail["decision"], "approver": SOPFLOW, "notes": detail["reason"]}
            try:
                send_answer(flow_run_id, answer, pause=pause_key(step_id, ask_number))
                error = None
            except (ResumeFailed, PrefectUnavailable) as exc:
                error = str(exc)
            except Exception as exc:  # unexpected: settle the attempt anyway, so it is tried again after its pause
                error = f"sending the answer failed unexpectedly ({type(exc).__name__}); it is tried again"
            with transaction() as session:
                sla_store.settle_decide(session, action_id, error)
            if error and attempts + 1 >= MAX_DECIDE_ATTEMPTS:
                log.warning("sopflow's overdue decision %s did not reach its run in %d tries; answer the ask by hand",
                            action_id, MAX_DECIDE_ATTEMPTS)
            elif error:
                log.warning("sopflow's overdue decision %s did not reach its run yet; it is tried again shortly",
                            action_id)
            else:
                sent.append(f"decision {action_id} ({detail['decision']}) sent to flow run {flow_run_id}")
        return sent
