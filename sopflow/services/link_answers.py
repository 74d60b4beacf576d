"""Answering an approval through a signed link: what the link's page shows, and the answer it sends.

Opening a link reads only. Answering checks the link and marks it used in one transaction, then sends the
answer, under the person the link was issued to, through the path `sopflow approve` takes; when the run cannot
take it, the link is released (nothing was recorded) and works again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from sopflow import approval_links
from sopflow.approval_links import LinkRefused, OpenLink
from sopflow.ask_description import describe_ask
from sopflow.schema import ApprovalStep
from sopflow.services.answering import (PrefectUnreachable, ResumeFailed, answer_for, approval_step, pause_key,
                                        send_answer)
from sopflow.services.connection import PrefectUnavailable
from sopflow.store import approval_links as link_store
from sopflow.store.db import transaction
from sopflow.versioning import sop_of_run

GONE = LinkRefused(410, "The SOP of this approval no longer has its step, so it cannot be answered here; answer in "
                        "the Prefect UI.")


@dataclass(frozen=True)
class LinkView:
    """What a link's page shows: the ask as its form describes it, and who answers through it."""

    person: str
    expires_at: datetime
    step: ApprovalStep
    description: str  # Markdown, as the Prefect UI's form shows it
    sop_id: str


class AnswerInvalid(Exception):
    """The answer's fields are not what the step takes: each (field, reason); nothing was sent or marked."""

    def __init__(self, view: LinkView, problems: list[tuple[str, str]]) -> None:
        super().__init__("; ".join(f"{name}: {reason}" for name, reason in problems))
        self.view, self.problems = view, problems


def _view(session: Session, opened: OpenLink) -> LinkView:
    sop = sop_of_run(session, opened.run)
    step = approval_step(sop, opened.ask.step_id)
    if sop is None or step is None:
        raise GONE
    description = describe_ask(session, sop, step, opened.ask, opened.run.lead_id)
    return LinkView(opened.link.person, opened.link.expires_at, step, description, sop.id)


def view(token: str, now: datetime | None = None) -> LinkView:
    """The page of link `token`; LinkRefused when it cannot answer. Changes nothing."""
    with transaction() as session:
        return _view(session, approval_links.check(session, token, now))


def answer(token: str, decision: str, notes: str, feedback: str, given: dict[str, str],
           now: datetime | None = None) -> LinkView:
    """Send the link's answer to its run and keep the link used; LinkRefused, AnswerInvalid (nothing changed) or
    ResumeFailed (the link is released: nothing was recorded; PrefectUnreachable when trying again may work) when it
    cannot be."""
    with transaction() as session:
        opened = approval_links.check(session, token, now, hold=True)  # refused before its fields are judged
        shown = _view(session, opened)
        answer_input, problems = answer_for(shown.step, decision, shown.person, notes, given, feedback)
        if problems:
            raise AnswerInvalid(shown, problems)
        approval_links.mark_used(session, opened, decision, now)
        flow_run_id, pause = opened.run.flow_run_id, pause_key(opened.ask.step_id, opened.ask.ask)
        link_id = opened.link.id
    try:
        if flow_run_id is None:
            raise ResumeFailed("the run of this approval has no flow run yet; nothing was recorded")
        send_answer(flow_run_id, answer_input, pause=pause)
    except BaseException as exc:  # whatever failed, the answer was not recorded: the link must work again
        with transaction() as session:
            link_store.release(session, link_id)
        if isinstance(exc, (ResumeFailed, PrefectUnavailable)) or not isinstance(exc, Exception):
            raise
        raise PrefectUnreachable(f"passing the answer on to flow run {flow_run_id} failed unexpectedly "
                                 f"({type(exc).__name__}); nothing was recorded") from exc
    return shown
