"""What a run's Prefect states say: what a suspended run waits for, who answered an approval, when a wait woke.

Staff names (the SOP's rosters) only: never a lead's personal data.
"""

from __future__ import annotations

from datetime import datetime

from sopflow.roster import Answerers

DECISION_STATES = {"approve": "Approved", "reject": "Rejected"}


def utc(moment: datetime) -> str:
    """`2026-11-24 14:02 UTC`."""
    return f"{moment:%Y-%m-%d %H:%M} UTC"


def day_utc(moment: datetime) -> str:
    """`Tue 24 Nov 14:00 UTC`: a deadline or wake time, as a person plans around it."""
    return f"{moment:%a %d %b %H:%M} UTC"


def answerers_words(who: Answerers) -> str:
    """`rep: Alex Kim or Priya Shah`: the roles that may answer and their people."""
    return f"{who.label}: {' or '.join(who.people)}"


def waiting_for(who: Answerers, due_by: datetime | None) -> str:
    """`waiting for rep: Alex Kim or Priya Shah, due Tue 24 Nov 14:00 UTC` (no due part without a deadline)."""
    return f"waiting for {answerers_words(who)}" + (f", due {day_utc(due_by)}" if due_by else "")


def waiting_until(wake_at: datetime) -> str:
    return f"waiting until {day_utc(wake_at)}"


def decided(decision: str, approver: str, answered_at: datetime) -> tuple[str, str]:
    """The state name and message of an accepted answer: ("Approved", "approve by Alex Kim at 2026-11-24 14:02 UTC")."""
    return DECISION_STATES[decision], f"{decision} by {approver} at {utc(answered_at)}"


def woke(woke_at: datetime) -> str:
    return f"woke at {utc(woke_at)}"
