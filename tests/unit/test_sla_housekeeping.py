"""Overdue approval asks, on SQLite and PostgreSQL: each `overdue` action is taken once per ask, whoever runs
housekeeping and however often; escalated people may answer, and sopflow only with its own decide action."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from datetime import timedelta

from sqlalchemy import func, select

from sopflow.roster import SOPFLOW
from sopflow.services import housekeeping
from sopflow.services.housekeeping import SlaKeeper
from sopflow.services.notices import MAX_ATTEMPTS, Retrier
from sopflow.store import sla as sla_store
from sopflow.store.db import transaction
from sopflow.store.models import Approval, ApprovalNotice, SlaAction
from tasks.approval import ask, form_for
from tests.approval_samples import CHANNEL, MANAGER, REPS, answered, sla_plan, started_run
from tests.unit.test_approval_links import store  # noqa: F401  (the fixture: the store on SQLite and PostgreSQL)


def opened(tmp_path):
    """A run of the SLA SOP with its approval ask open; (its StepCall, the ask's id, the ask's due time)."""
    call = started_run(sla_plan(tmp_path))
    asked = ask(call)
    with transaction() as session:
        return call, asked["ask_id"], session.get_one(Approval, asked["ask_id"]).due_by


def actions() -> list[tuple[int, int, str]]:
    with transaction() as session:
        return [(a.approval_id, a.action_index, a.action)
                for a in session.scalars(select(SlaAction).order_by(SlaAction.action_index))]


def notices_by_occasion(ask_id: int) -> dict[str, list[str]]:
    with transaction() as session:
        rows = session.scalars(select(ApprovalNotice).where(ApprovalNotice.approval_id == ask_id)
                               .order_by(ApprovalNotice.id))
        found: dict[str, list[str]] = {}
        for row in rows:
            found.setdefault(row.occasion, []).append(row.recipient)
        return found


def form(step_call, **values):
    return form_for(step_call.planned.step).model_validate({"notes": "", **values})


def test_each_action_waits_for_its_time_and_is_taken_once(store, tmp_path):
    call, ask_id, due = opened(tmp_path)
    keeper = SlaKeeper()
    assert keeper.round(due + timedelta(seconds=59)) == [] and actions() == []
    assert keeper.round(due + timedelta(seconds=61)) == [f"remind of ask {ask_id} (sla-approval/approve_lead)"]
    assert keeper.round(due + timedelta(seconds=90)) == []  # taken already
    keeper.round(due + timedelta(seconds=121))
    assert actions() == [(ask_id, 0, "remind"), (ask_id, 1, "escalate")]
    sent = notices_by_occasion(ask_id)
    assert sent == {"ask": [*REPS, CHANNEL], "remind-0": [*REPS, CHANNEL], "escalate-1": list(MANAGER)}
    with transaction() as session:
        assert sla_store.escalated_roles(session, call.run_id, "approve_lead") == ["manager"]


def test_every_action_is_taken_once_by_many_keepers_at_once(store, tmp_path):
    _, ask_id, due = opened(tmp_path)
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def keep() -> None:
        start.wait()
        try:
            for _ in range(3):
                SlaKeeper().round(due + timedelta(minutes=5))
        except BaseException as exc:  # noqa: BLE001  (reported below)
            failures.append(exc)

    threads = [threading.Thread(target=keep) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert failures == []
    assert actions() == [(ask_id, 0, "remind"), (ask_id, 1, "escalate"), (ask_id, 2, "decide")]
    assert notices_by_occasion(ask_id) == {"ask": [*REPS, CHANNEL], "remind-0": [*REPS, CHANNEL],
                                           "escalate-1": list(MANAGER)}
    with transaction() as session:
        taken = sla_store.actions_taken(session)
        decide = taken[-1]
        assert (decide.action, decide.detail, decide.done_at) == (
            "decide", {"decision": "reject", "reason": "No answer within three minutes"}, None)
        assert "no Prefect server" in decide.last_error  # nothing to send it to here; later rounds try again
        assert session.scalar(select(func.count()).select_from(ApprovalNotice)) == 7  # 3 + 3 + 1, as above


def test_sopflows_decision_reaches_the_run_once_through_the_approve_path(store, tmp_path, monkeypatch):
    call, ask_id, due = opened(tmp_path)
    sent: list[tuple[str, dict, str | None]] = []
    monkeypatch.setattr(housekeeping, "send_answer",
                        lambda run, answer_, pause=None: sent.append((run, answer_, pause)))
    keeper = SlaKeeper()
    done = keeper.round(due + timedelta(minutes=3, seconds=1))
    assert done[-1].startswith("decision ") and done[-1].endswith("(reject) sent to flow run " + sent[0][0])
    assert sent == [(sent[0][0], {"decision": "reject", "approver": SOPFLOW, "notes": "No answer within three minutes"},
                     "approve-lead-ask-0")]
    keeper.round(due + timedelta(minutes=4))
    assert len(sent) == 1
    result = answered(call, ask_id, form(call, **sent[0][1]))  # what the run does with it
    assert (result["status"], result["decision"], result["approver"], result["notes"]) == (
        "completed", "reject", SOPFLOW, "No answer within three minutes")
    with transaction() as session:
        assert sla_store.actions_taken(session, [call.run_id])[-1].done_at is not None


def test_sopflow_answers_only_with_its_own_decide_action(store, tmp_path):
    call, ask_id, due = opened(tmp_path)
    result = answered(call, ask_id, form(call, decision="reject", approver="sopflow"))
    assert result["status"] == "refused" and "'sopflow' is not on the rep roster" in result["reason"]
    second = ask(call)["ask_id"]
    SlaKeeper().round(due + timedelta(minutes=5))  # decide claims reject for the second ask
    assert answered(call, second, form(call, decision="approve", approver="sopflow"))["status"] == "refused"
    third = ask(call)["ask_id"]  # a refused answer asks again: what was done for the step is not done again
    SlaKeeper().round(due + timedelta(minutes=6))
    assert [(a, i) for a, i, _ in actions()] == [(second, 0), (second, 1), (second, 2)]
    assert answered(call, third, form(call, decision="reject", approver="sopflow"))["status"] == "refused"


def test_escalated_people_may_answer_from_then_on(store, tmp_path):
    call, ask_id, due = opened(tmp_path)
    early = answered(call, ask_id, form(call, decision="approve", approver="Maria Lopez"))
    assert early["status"] == "refused"
    assert early["reason"] == ("'Maria Lopez' is not on the rep roster (Priya Shah, Alex Kim, Sam Noemail); "
                               "ask one of them to answer")
    second = ask(call)
    assert "Who may answer (rep):" in second["description"]
    SlaKeeper().round(due + timedelta(minutes=2, seconds=1))
    assert notices_by_occasion(second["ask_id"])["escalate-1"] == list(MANAGER)
    again = ask(call)  # the run re-executed: the same ask, now with the manager on it
    assert again["ask_id"] == second["ask_id"]
    assert "**Who may answer (rep or manager):** Priya Shah, Alex Kim, Sam Noemail, Maria Lopez" in again["description"]
    result = answered(call, second["ask_id"], form(call, decision="approve", approver="maria lopez"))
    assert (result["status"], result["approver"]) == ("completed", "Maria Lopez")


def test_a_notice_that_cannot_go_out_waits_is_tried_again_then_given_up(store, tmp_path, caplog):
    _, ask_id, _ = opened(tmp_path)  # its channel post could not go out: there is no Prefect server here

    def channel() -> ApprovalNotice:
        with transaction() as session:
            return session.scalars(select(ApprovalNotice).where(ApprovalNotice.channel == "block")).one()

    assert (channel().status, channel().attempts) == ("queued", 1)
    retrier = Retrier()
    assert retrier.round() == {channel().id: "queued"} and channel().attempts == 2
    assert retrier.round() == {}  # not again at once: the pause doubles with every try
    with transaction() as session:
        session.get_one(ApprovalNotice, channel().id).attempts = MAX_ATTEMPTS
    assert retrier.round() == {} and channel().status == "failed" and "did not post" in channel().last_error
    assert f"approval notice {channel().id} failed after {MAX_ATTEMPTS} tries" in caplog.text
    assert "sales.test" not in caplog.text and "/approve/" not in caplog.text


def test_a_notice_left_sending_by_a_dead_sender_is_settled_after_a_while(store, tmp_path, monkeypatch, caplog):

    from sopflow.services import notices as notices_service

    opened(tmp_path)
    with transaction() as session:
        notice = session.scalars(select(ApprovalNotice).where(ApprovalNotice.channel == "block")).one()
        notice.status, notice_id = "sending", notice.id  # its sender died mid-post
    clock = [1000.0]
    monkeypatch.setattr(notices_service, "time", SimpleNamespace(monotonic=lambda: clock[0]))
    retrier = Retrier()

    def status() -> str:
        with transaction() as session:
            return session.get_one(ApprovalNotice, notice_id).status

    assert notice_id not in retrier.round() and status() == "sending"  # it may still be posting
    clock[0] += notices_service.STALE_SENDING - 1
    assert notice_id not in retrier.round() and status() == "sending"
    clock[0] += 1
    assert retrier.round()[notice_id] == "unconfirmed" and status() == "unconfirmed"  # a post is not resent
    assert f"approval notice {notice_id} was left sending" in caplog.text


def test_one_failing_ask_does_not_hold_up_the_others(store, tmp_path, monkeypatch, caplog):
    _, first, due = opened(tmp_path)
    _, second, _ = opened(tmp_path)
    take = housekeeping._take

    def failing(session, sop, step, ask_, due_):
        if ask_.id == first:
            take(session, sop, step, ask_, due_)  # its claim is rolled back with its savepoint
            raise ValueError("broken ask")
        return take(session, sop, step, ask_, due_)

    monkeypatch.setattr(housekeeping, "_take", failing)
    done = SlaKeeper().round(due + timedelta(seconds=61))
    assert done == [f"remind of ask {second} (sla-approval/approve_lead)"]
    assert [a for a, _, _ in actions()] == [second] and "remind-0" not in notices_by_occasion(first)
    assert f"overdue actions of approval ask {first} failed (ValueError)" in caplog.text
    monkeypatch.setattr(housekeeping, "_take", take)
    assert SlaKeeper().round(due + timedelta(seconds=62)) == [f"remind of ask {first} (sla-approval/approve_lead)"]


def test_notices_are_retried_even_when_the_sla_round_fails():
    from deployments.housekeeper import Housekeeper

    keeper = Housekeeper(poll_seconds=0.01, pause_after_error=0.01)
    retried = threading.Event()

    def broken_round():
        raise RuntimeError("store busy")

    keeper.sla = SimpleNamespace(round=broken_round)
    keeper.notices = SimpleNamespace(round=retried.set)
    keeper.start()
    try:
        assert retried.wait(timeout=5)
    finally:
        keeper.stop()
