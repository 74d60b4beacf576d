"""Approval notices and their signed links, on SQLite and PostgreSQL: a new ask notifies each person with an address
once, each link answers once as its person, and a forged, tampered, used or expired link answers nothing."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from sopflow import approval_links
from sopflow.approval_links import ANSWERED, EXPIRED, MALFORMED, NOT_VALID, USED, LinkRefused, expiry
from sopflow.notify import LINK_MARK
from sopflow.store import approvals
from sopflow.store.approval_links import verified_asks
from sopflow.store.db import transaction
from sopflow.store.models import Approval, ApprovalLink, ApprovalNotice, utcnow
from tasks.approval import ask
from tasks.records import StepCall
from tests.approval_samples import CHANNEL, REPS, sla_plan, started_run


@pytest.fixture
def store(store_url, tmp_path, monkeypatch) -> str:
    """The store (SQLite, then PostgreSQL), a home for the signing key, and no Prefect server known."""
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(tmp_path))
    monkeypatch.setenv("SOPFLOW_PUBLIC_URL", "https://sopflow.example")
    for name in ("PREFECT_API_URL", "PREFECT_UI_URL", "SOPFLOW_EMAIL_TRANSPORT"):
        monkeypatch.delenv(name, raising=False)
    return store_url


@pytest.fixture
def call(store, tmp_path) -> StepCall:
    """A run of the SLA SOP at its approval step."""
    return started_run(sla_plan(tmp_path))


@pytest.fixture
def asked(call) -> dict:
    """The run's approval ask, opened by the step's task (its notices queued and sent)."""
    return ask(call)


def notices() -> list[ApprovalNotice]:
    with transaction() as session:
        return list(session.scalars(select(ApprovalNotice).order_by(ApprovalNotice.id)))


def links(ask_id: int) -> dict[str, ApprovalLink]:
    with transaction() as session:
        return {link.person: link for link in session.scalars(select(ApprovalLink).where(
            ApprovalLink.approval_id == ask_id))}


def refused(token: str, now: datetime | None = None, use: bool = False) -> LinkRefused:
    with pytest.raises(LinkRefused) as info, transaction() as session:
        (approval_links.use(session, token, "approve", now) if use else approval_links.check(session, token, now))
    return info.value


def test_a_new_ask_notifies_each_person_with_an_address_once(call, asked):
    assert asked["status"] == "waiting"
    assert "If unanswered by the due time: 1m after it, a reminder" in asked["description"]
    sent = notices()
    emails = {n.recipient: n for n in sent if n.channel == "email"}
    assert {name: n.to_address for name, n in emails.items()} == REPS  # Sam Noemail has no address
    assert [(n.recipient, n.occasion) for n in sent if n.channel == "block"] == [(CHANNEL, "ask")]
    assert {n.status for n in emails.values()} == {"sent"}  # the default outbox transport keeps them in the store
    priya = emails["Priya Shah"]
    assert priya.subject.startswith("Approval needed: Work this lead? (Ada <b>Byron</b>, Analytical Engines)")
    assert LINK_MARK in priya.body_text and "/approve/" not in priya.body_text  # no link is ever stored
    assert "Due by: " in priya.body_text
    assert "Who may answer (rep: Priya Shah, Alex Kim, Sam Noemail)" in priya.body_text
    assert "&lt;b&gt;Byron" in priya.body_html and "<b>Byron" not in priya.body_html
    channel = next(n for n in sent if n.channel == "block")
    assert channel.status == "queued" and "did not post" in channel.last_error  # no Prefect here: housekeeping retries
    assert LINK_MARK not in channel.body_text  # a channel gets no personal link

    again = ask(call)
    assert again["ask_id"] == asked["ask_id"] and len(notices()) == len(sent)  # re-run after a resume: nothing new
    assert set(links(asked["ask_id"])) == set(REPS)


def test_a_link_answers_once_as_its_person(asked):
    mine = links(asked["ask_id"])["Priya Shah"]
    token = approval_links.token(mine)
    assert approval_links.url(mine) == f"https://sopflow.example/approve/{token}"
    with transaction() as session:
        opened = approval_links.check(session, token)
        assert (opened.link.person, opened.ask.id) == ("Priya Shah", asked["ask_id"])
    with transaction() as session:
        approval_links.use(session, token, "approve")
    assert refused(token).status == USED.status and refused(token).sentence == USED.sentence
    other = approval_links.token(links(asked["ask_id"])["Alex Kim"])
    assert refused(other).sentence == ANSWERED.sentence  # one answer per ask, whichever link gives it
    used = links(asked["ask_id"])["Priya Shah"]
    assert used.decision == "approve" and used.used_at is not None


@pytest.mark.parametrize("given", ["", "abc", "x" * 5000, "../../etc/passwd", "0" * 36 + "." + "A" * 43,
                                   "ünïcödé", "%00", "{token}x", "{token}/more", "{id}.{sig}="])
def test_a_malformed_link_is_refused(asked, given):
    token = approval_links.token(links(asked["ask_id"])["Priya Shah"])
    link_id, signature = token.split(".")
    given = given.format(token=token, id=link_id, sig=signature)
    assert refused(given).status == MALFORMED.status


def test_a_forged_or_tampered_link_is_refused_and_changes_nothing(asked):
    mine, theirs = links(asked["ask_id"])["Priya Shah"], links(asked["ask_id"])["Alex Kim"]
    token = approval_links.token(mine)
    link_id, signature = token.split(".")
    flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
    forged = "12345678-1234-4234-8234-123456789abc." + signature
    for given in (f"{link_id}.{flipped}", f"{theirs.id}.{signature}", forged):
        assert refused(given).sentence == NOT_VALID.sentence
    assert refused(f"{link_id}.{flipped}", use=True).status == 403
    with transaction() as session:  # the row changed behind the signature's back: a longer life, another person
        session.execute(update(ApprovalLink).where(ApprovalLink.id == mine.id).values(
            expires_at=mine.expires_at + timedelta(days=30)))
    assert refused(token).status == 403
    with transaction() as session:
        session.execute(update(ApprovalLink).where(ApprovalLink.id == mine.id).values(
            expires_at=mine.expires_at, person="Alex Kim"))
    assert refused(token).status == 403
    assert {link.used_at for link in links(asked["ask_id"]).values()} == {None}


def test_an_expired_link_is_refused(asked):
    with transaction() as session:  # an ask due three days ago, and a link sent then
        ask_row = session.get_one(Approval, asked["ask_id"])
        ask_row.due_by = utcnow() - timedelta(days=3)
        old = approval_links.issue(session, ask_row, "Priya Shah", now=ask_row.due_by)
        token = approval_links.token(old)
    assert refused(token).sentence == EXPIRED.sentence
    fresh = approval_links.token(links(asked["ask_id"])["Alex Kim"])
    assert refused(fresh, now=links(asked["ask_id"])["Alex Kim"].expires_at).status == 410
    assert refused(token, use=True).status == 410 and links(asked["ask_id"])["Priya Shah"].used_at is None


def test_a_link_of_an_answered_ask_is_refused(asked):
    with transaction() as session:
        approvals.record_answer(session, asked["ask_id"], "approve", "Alex Kim", "typed in the UI", None)
    assert refused(approval_links.token(links(asked["ask_id"])["Priya Shah"])).sentence == ANSWERED.sentence


def test_links_expire_a_day_after_the_due_time_or_a_week_after_sending():
    sent = datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=timezone.utc)
    assert expiry(sent + timedelta(hours=4), sent) == datetime(2026, 3, 3, 13, 0, 0, tzinfo=timezone.utc)
    assert expiry(sent - timedelta(hours=4), sent) == datetime(2026, 3, 3, 9, 0, 0, tzinfo=timezone.utc)  # reminders
    assert expiry(None, sent) == datetime(2026, 3, 9, 9, 0, 0, tzinfo=timezone.utc)


def test_two_links_used_at_once_answer_once(asked):
    tokens = [approval_links.token(link) for link in links(asked["ask_id"]).values()]
    outcomes: list[str] = []
    start = threading.Barrier(len(tokens))

    def use(token: str) -> None:
        start.wait()
        try:
            with transaction() as session:
                approval_links.use(session, token, "reject")
            outcomes.append("used")
        except LinkRefused as exc:
            outcomes.append(str(exc.status))

    threads = [threading.Thread(target=use, args=(token,)) for token in tokens]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(outcomes) == ["409", "used"]


def test_only_an_answer_through_its_persons_link_is_verified(store, tmp_path):
    plan = sla_plan(tmp_path)
    by_link, typed, other_person = (ask(started_run(plan))["ask_id"] for _ in range(3))
    for ask_id, approver in ((by_link, "Priya Shah"), (other_person, "Alex Kim")):
        with transaction() as session:
            approval_links.use(session, approval_links.token(links(ask_id)["Priya Shah"]), "approve")
            approvals.record_answer(session, ask_id, "approve", approver, "", None)
    with transaction() as session:
        approvals.record_answer(session, typed, "approve", "Priya Shah", "", None)
        assert verified_asks(session, [by_link, typed, other_person]) == {by_link}
        assert verified_asks(session, []) == set()


class _FakeClient:
    """A Prefect client whose flow run waits under pause key `paused_under` and answers resumes with `status`."""

    def __init__(self, paused_under: str | None, status: str) -> None:
        self.paused_under, self.status, self.resumed = paused_under, status, []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def read_flow_run(self, flow_run_id):
        from prefect.states import Paused, Running
        state = Paused(pause_key=self.paused_under) if self.paused_under else Running()
        return type("FlowRun", (), {"state": state})()

    def resume_flow_run(self, flow_run_id, run_input=None):
        from prefect.client.schemas import OrchestrationResult
        from prefect.client.schemas.responses import StateAbortDetails, StateAcceptDetails
        self.resumed.append(run_input)
        details = StateAcceptDetails() if self.status == "ACCEPT" else StateAbortDetails(reason="Run is not paused.")
        return OrchestrationResult(state=None, status=self.status, details=details)


@pytest.mark.parametrize(("paused_under", "status", "taken"), [("approve-ask-1", "ACCEPT", True),
                                                              ("approve-ask-1", "ABORT", False),
                                                              ("approve-ask-2", "ACCEPT", False),
                                                              (None, "ACCEPT", False)])
def test_an_answer_counts_only_when_the_run_takes_it(monkeypatch, paused_under, status, taken):
    import contextlib

    import prefect.client.orchestration

    from sopflow.services import answering
    client = _FakeClient(paused_under, status)
    monkeypatch.setattr(answering, "prefect_api", contextlib.nullcontext)
    monkeypatch.setattr(prefect.client.orchestration, "get_client", lambda sync_client=False: client)
    run_id = "00000000-0000-0000-0000-000000000001"
    if taken:
        answering.send_answer(run_id, {"decision": "approve"}, pause="approve-ask-1")
    else:
        with pytest.raises(answering.ResumeFailed) as failed:
            answering.send_answer(run_id, {"decision": "approve"}, pause="approve-ask-1")
        assert not isinstance(failed.value, answering.PrefectUnreachable)
    assert client.resumed == ([{"decision": "approve"}] if paused_under == "approve-ask-1" else [])
