"""Approval notices and SLAs against a real `sopflow up` (its own, serving one SOP) and a real SMTP server:
every roster member with an address gets a signed link of their own, one link answers the run once and is
recorded as verified (here the manager's, asked once the SLA was missed), and a missed SLA reminds, escalates
and decides, each exactly once. Two leads, two runs side by side: each run and each resume costs a process.

An ask's due time is an hour away; the tests move it into the past in the store to miss it (SOP durations
are whole minutes, far too long to wait for here).
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from sopflow import approval_links
from sopflow.roster import SOPFLOW
from sopflow.services.connection import prefect_api
from sopflow.store import approval_links as link_store
from sopflow.store.approval_links import verified_asks
from sopflow.store.models import Approval, ApprovalLink, SopRun, utcnow
from sopflow.store.sla import actions_taken
from tests.approval_samples import MANAGER, REPS, SLA_SOP
from tests.server_fixture import Sopflow, start_sopflow_up
from tests.support import add_lead, environment, finished, flow_state, step_records, wait_for

pytestmark = pytest.mark.server
SOP = "sla-approval"
CHANNEL_PATH = "/reps-channel"


@pytest.fixture(scope="module")
def sla_up(tmp_path_factory, mailbox, webhooks) -> Iterator[Sopflow]:
    """`sopflow up` serving the SLA SOP, mailing through the test SMTP server, with the reps' channel block."""
    from prefect.blocks.notifications import CustomWebhookNotificationBlock

    root = tmp_path_factory.mktemp("sla-up")
    (root / "sops").mkdir()
    (root / "sops" / f"{SOP}.yaml").write_text(SLA_SOP)
    with start_sopflow_up(root, root / "sops", {"SOPFLOW_EMAIL_TRANSPORT": "smtp", "SOPFLOW_SMTP_URL": mailbox.url,
                                                "SOPFLOW_EMAIL_FROM": "sopflow@sopflow.test",
                                                "SOPFLOW_INTAKE_WORKERS": "1"}) as up:
        with environment(up.env), prefect_api():
            CustomWebhookNotificationBlock(name="reps", url=f"{webhooks.url}{CHANNEL_PATH}",
                                           json_data={"text": "{{subject}}\n{{body}}"}).save("reps-channel")
        yield up


@pytest.fixture(scope="module")
def leads(sla_up) -> dict[str, str]:
    """The tests' leads, added together so that their runs start and reach their asks side by side: name -> id."""
    names = {"Lina Link": "Linkworks", "Otto Overdue": "Lateworks", "Esme Escalated": "Upstairs"}
    return {name: add_lead(sla_up, name=name, company=company)["id"] for name, company in names.items()}


@pytest.fixture(scope="module")
def leads(sla_up) -> dict[str, str]:
    """The tests' leads, added together so that their runs reach their asks side by side: name -> lead id."""
    names = {"Lina Link": "Linkworks", "Otto Overdue": "Lateworks"}
    return {name: add_lead(sla_up, name=name, company=company)["id"] for name, company in names.items()}


def mails(mailbox, lead_name: str) -> list[tuple[str, str, str]]:
    """(to, subject, text) of every notice about the lead named `lead_name`, in the order they arrived."""
    return [(m["To"], m["Subject"], m.get_body(("plain",)).get_content()) for m in list(mailbox.messages)
            if lead_name in m["Subject"]]


def link_in(up: Sopflow, text: str) -> str:
    found = re.findall(rf"{re.escape(up.intake_url)}/approve/([0-9a-f-]{{36}}\.[A-Za-z0-9_-]{{43}})", text)
    assert len(found) == 1, text
    return found[0]


def posts(webhooks, lead_name: str) -> list[str]:
    return [r.body["text"] for r in webhooks.accepted_on(CHANNEL_PATH) if lead_name in r.body["text"]]


def open_ask(up: Sopflow, lead_id: str) -> tuple[Approval, SopRun]:
    """The lead's ask, once its run is suspended waiting for it."""
    def probe() -> tuple[Approval, SopRun] | None:
        with up.store() as session:
            found = session.execute(select(Approval, SopRun).join(SopRun, SopRun.id == Approval.sop_run_id)
                                    .where(SopRun.lead_id == lead_id)).first()
        return tuple(found) if found and flow_state(up, found[1].flow_run_id) == "PAUSED" else None

    return wait_for(probe, "the approval ask and its suspended run", timeout=90)


def miss_the_due_time(up: Sopflow, ask_id: int, by: timedelta) -> None:
    with up.store() as session, session.begin():
        session.execute(update(Approval).where(Approval.id == ask_id).values(due_by=utcnow() - by))


def answer_page(up: Sopflow, token: str, body: str) -> httpx.Response:
    return httpx.post(f"{up.intake_url}/approve/{token}", content=body,
                      headers={"Content-Type": "application/x-www-form-urlencoded"}, timeout=30)


def test_each_person_gets_a_link_and_an_escalated_managers_link_answers_verified(sla_up, leads, mailbox, webhooks):
    ask, run = open_ask(sla_up, leads["Lina Link"])
    notices = wait_for(lambda: len(got := mails(mailbox, "Lina Link")) == 2 and got, "a notice to each rep")
    assert sorted(to for to, _, _ in notices) == sorted(REPS.values())  # Sam Noemail has no address
    tokens = {to: link_in(sla_up, text) for to, _, text in notices}
    for _, subject, text in notices:
        assert subject == "Approval needed: Work this lead? (Lina Link, Linkworks)"
        assert "Lead: Lina Link, VP Sales at Linkworks" in text and "Due by: " in text
        assert f"{sla_up.ui_url}/runs/flow-run/{run.flow_run_id}" in text
    for address, token in tokens.items():  # each link works, as its own person, and opening it changes nothing
        page = httpx.get(f"{sla_up.intake_url}/approve/{token}", timeout=30)
        name = next(person for person, mail in REPS.items() if mail == address)
        assert page.status_code == 200 and f"You answer as <strong>{name}</strong>" in page.text
    [post] = wait_for(lambda: posts(webhooks, "Lina Link"), "the post in the reps' channel")
    assert "Work this lead?" in post and "/approve/" not in post  # a channel gets no one's link

    miss_the_due_time(sla_up, ask.id, timedelta(minutes=2, seconds=1))  # remind and escalate; decide in 59 s
    escalated = wait_for(lambda: [text for to, _, text in mails(mailbox, "Lina Link")
                                  if to == MANAGER["Maria Lopez"]], "the manager's notice")
    assert "Who may answer (rep or manager: Priya Shah, Alex Kim, Sam Noemail, Maria Lopez)" in escalated[0]
    maria = link_in(sla_up, escalated[0])
    link_id, signature = maria.split(".")
    forged = f"{link_id}.{signature[::-1]}"
    with environment(sla_up.env), sla_up.store() as session, session.begin():  # signed with the real key
        expired_link = link_store.add_link(session, ask.id, "Maria Lopez", utcnow() - timedelta(minutes=1))
        expired = approval_links.token(expired_link)
    assert answer_page(sla_up, forged, "decision=approve").status_code == 403
    assert answer_page(sla_up, expired, "decision=approve").status_code == 410

    answered = answer_page(sla_up, maria, "decision=approve&budget=25000&notes=Budget+confirmed")
    assert answered.status_code == 200, answered.text
    done = finished(sla_up, leads["Lina Link"], SOP)
    result = step_records(sla_up, done.id)["approve_lead"].result
    assert (result["decision"], result["approver"], result["budget"], result["notes"]) == (
        "approve", "Maria Lopez", 25000, "Budget confirmed")
    with sla_up.store() as session:
        assert verified_asks(session, [ask.id]) == {ask.id}

    for token, status in ((maria, 410), (tokens[REPS["Priya Shah"]], 409), (forged, 403), (expired, 409)):
        refused = answer_page(sla_up, token, "decision=reject")
        assert refused.status_code == status, refused.text
    with sla_up.store() as session:  # nothing changed: one answer, one used link, no decision by sopflow
        asks = session.scalars(select(Approval).where(Approval.sop_run_id == run.id)).all()
        assert [(a.decision, a.approver) for a in asks] == [("approve", "Maria Lopez")]
        assert [a.action for a in actions_taken(session, [run.id])] == ["remind", "escalate"]
        used = session.scalars(select(ApprovalLink).where(ApprovalLink.approval_id == ask.id,
                                                          ApprovalLink.used_at.is_not(None))).all()
        assert [(link.person, link.decision) for link in used] == [("Maria Lopez", "approve")]
    assert step_records(sla_up, done.id)["approve_lead"].result == result


def test_a_missed_sla_reminds_escalates_and_decides_once_each(sla_up, leads, mailbox, webhooks):
    ask, run = open_ask(sla_up, leads["Otto Overdue"])
    wait_for(lambda: len(mails(mailbox, "Otto Overdue")) == 2, "the ask's notices")
    miss_the_due_time(sla_up, ask.id, timedelta(minutes=3, seconds=20))  # remind, escalate and decide are all due

    done = finished(sla_up, leads["Otto Overdue"], SOP)
    assert done.outcome == "rejected at approve_lead"
    result = step_records(sla_up, done.id)["approve_lead"].result
    assert (result["decision"], result["approver"], result["notes"]) == (
        "reject", SOPFLOW, "No answer within three minutes")
    time.sleep(3)  # a few more housekeeping rounds: nothing is taken or sent again
    sent = mails(mailbox, "Otto Overdue")
    assert sorted((to, subject.split(":")[0]) for to, subject, _ in sent) == sorted(
        [(address, "Approval needed") for address in REPS.values()]
        + [(address, "Reminder") for address in REPS.values()]
        + [(MANAGER["Maria Lopez"], "Escalated to you (manager)")])
    assert len({link_in(sla_up, text) for _, _, text in sent}) == 5  # every notice its own, fresh link
    assert len(posts(webhooks, "Otto Overdue")) == 2  # the ask and the reminder, in the reps' channel
    with sla_up.store() as session:
        taken = actions_taken(session, [run.id])
        assert [(a.action, a.ask_id) for a in taken] == [("remind", ask.id), ("escalate", ask.id), ("decide", ask.id)]
        assert taken[1].detail == {"to": "manager", "people": ["Maria Lopez"]} and taken[2].done_at is not None
        row = session.get_one(Approval, ask.id)
        assert (row.approver, row.accepted) == (SOPFLOW, True)
        assert verified_asks(session, [ask.id]) == set()  # decided by sopflow, not through a person's link
