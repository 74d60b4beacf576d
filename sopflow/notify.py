"""Approval notices: what the people who may answer an ask are told, by email and in their team's channel.

An ask's notices are queued in the transaction that opens the ask (or takes the overdue action), once per
(ask, occasion, recipient), so a run re-executed after a resume never queues them twice; delivery then goes
through the outbox's exactly-once machinery (`sopflow.mail.delivery`). Each email carries the recipient's own
signed link, put in as the email is sent (the store keeps a marker, never the link); a channel post carries none.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from sopflow import approval_links, settings
from sopflow.ask_description import who_may_answer
from sopflow.mail.delivery import Deliverable
from sopflow.run_context import run_context
from sopflow.schema import ApprovalStep, Sop
from sopflow.sla import plan_words
from sopflow.state_messages import utc
from sopflow.store import notices
from sopflow.store.models import Approval, ApprovalLink, ApprovalNotice, SopRun

LINK_MARK = "[[your-approval-link]]"  # where an email's link goes; filled in as it is sent
MAX_SUBJECT = 200


@dataclass(frozen=True)
class Occasion:
    """Why notices go out: `ask` (the ask opened), `remind-<i>` or `escalate-<i>` (overdue action i)."""

    key: str
    roles: tuple[str, ...]  # whose people (and channels) are told
    heading: str


def on_ask(session: Session, sop: Sop, step: ApprovalStep, ask: Approval) -> Occasion:
    roles = who_may_answer(session, sop, step, ask.sop_run_id).roles
    return Occasion("ask", roles, "Approval needed" if ask.ask == 0 else "Approval needed again")


def on_remind(session: Session, sop: Sop, step: ApprovalStep, ask: Approval, index: int) -> Occasion:
    roles = who_may_answer(session, sop, step, ask.sop_run_id).roles
    return Occasion(f"remind-{index}", roles, "Reminder: this approval is overdue")


def on_escalate(role: str, index: int) -> Occasion:
    return Occasion(f"escalate-{index}", (role,), f"Escalated to you ({role}): this approval is overdue")


def queue(session: Session, sop: Sop, step: ApprovalStep, ask: Approval, occasion: Occasion) -> list[int]:
    """Queue `occasion`'s notices of `ask`: an email, with a new link, to each person of its roles who has an address,
    and a post to each role's channel. Returns the ids queued now (none when the occasion was queued before)."""
    addresses = {person: address for role in occasion.roles for person, address in sop.emails(role).items()}
    channels = list(dict.fromkeys(sop.notify[role] for role in occasion.roles if role in sop.notify))
    if not (addresses or channels) or notices.occasion_queued(session, ask.id, occasion.key):
        return []
    facts = _facts(session, sop, step, ask, session.get_one(SopRun, ask.sop_run_id))
    queued: list[ApprovalNotice | None] = []
    for person, address in addresses.items():
        link = approval_links.issue(session, ask, person)
        subject, text, html = _compose(occasion, facts, link)
        queued.append(notices.add_notice(session, ApprovalNotice(
            approval_id=ask.id, occasion=occasion.key, channel="email", recipient=person, to_address=address,
            link_id=link.id, subject=subject, body_text=text, body_html=html)))
    for slug in channels:
        subject, text, _html = _compose(occasion, facts, None)
        queued.append(notices.add_notice(session, ApprovalNotice(
            approval_id=ask.id, occasion=occasion.key, channel="block", recipient=slug, to_address=slug,
            subject=subject, body_text=text, body_html=None)))
    session.flush()
    return [notice.id for notice in queued if notice is not None]


def _facts(session: Session, sop: Sop, step: ApprovalStep, ask: Approval, run: SopRun) -> dict[str, Any]:
    lead = run_context(session, sop, run.id, run.lead_id)["lead"]
    who = who_may_answer(session, sop, step, run.id)
    base = settings.ui_url()
    score = f" · score {lead['score']} (grade {lead.get('grade')})" if lead.get("score") is not None else ""
    return {
        "prompt": step.prompt, "lead": f"{_shown(lead.get('name'))}, {_shown(lead.get('title'))} at "
                                      f"{_shown(lead.get('company'))}{score}",
        "company": _shown(lead.get("company")), "name": _shown(lead.get("name")),
        "sop": f"{sop.name} ({sop.id} v{sop.version}), step {step.id}",
        "due": utc(ask.due_by) if ask.due_by else "no deadline",
        "who": f"{who.label}: {', '.join(who.people)}", "plan": plan_words(step, sop.people),
        "ui": f"{base}/runs/flow-run/{run.flow_run_id}" if base and run.flow_run_id else None,
        "cli": f"sopflow approve {run.flow_run_id} --approver \"<your name>\"" if run.flow_run_id else None,
    }


def _shown(value: Any) -> str:
    return " ".join(str(value).split()) if value not in (None, "") else "—"


def _compose(occasion: Occasion, facts: dict[str, Any], link: ApprovalLink | None) -> tuple[str, str, str]:
    """Subject, text and HTML of one notice; `link` None for a channel post (no personal link)."""
    subject = f"{occasion.heading}: {facts['prompt']} ({facts['name']}, {facts['company']})"[:MAX_SUBJECT]
    lines: list[tuple[str, str | None]] = [  # (words, the address they lead to)
        (f"{occasion.heading}.", None), (facts["prompt"], None), (f"Lead: {facts['lead']}", None),
        (f"SOP: {facts['sop']}", None), (f"Due by: {facts['due']}", None), (f"Who may answer ({facts['who']})", None)]
    if facts["plan"]:
        lines.append((facts["plan"], None))
    if link is not None:
        lines.append((f"Answer with your own link (it answers once, as you, until {link.expires_at:%Y-%m-%d %H:%M} "
                      "UTC): ", LINK_MARK))
    if facts["ui"]:
        lines.append(("Or in the Prefect UI: ", facts["ui"]))
    if facts["cli"]:
        lines.append((f"Or from the terminal: {facts['cli']}", None))
    text = "\n\n".join(words + (url or "") for words, url in lines) + "\n"
    html = "".join(f"<p>{escape(words)}" + (f'<a href="{escape(url)}">{escape(url)}</a>' if url else "") + "</p>"
                   for words, url in lines)
    return subject, text, f"<!doctype html><meta charset=utf-8>{html}"


def _bodies(session: Session, notice: ApprovalNotice) -> tuple[str, str | None]:
    """The bodies as sent: the recipient's signed link in place of the marker."""
    if notice.link_id is None:
        return notice.body_text, notice.body_html
    url = approval_links.url(session.get_one(ApprovalLink, notice.link_id))
    html = notice.body_html.replace(LINK_MARK, escape(url)) if notice.body_html else None
    return notice.body_text.replace(LINK_MARK, url), html


NOTICES = Deliverable(ApprovalNotice, "approval notice", bodies=_bodies)
