"""The store on SQLite and PostgreSQL: one lead per email, one run per (SOP, lead), effects once."""

from __future__ import annotations

import threading
from datetime import timezone

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from sopflow.leads import LeadIn
from sopflow.loader import load_sop
from sopflow.plan import compile_plan
from sopflow.settings import PROJECT_ROOT
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import Lead, OutboxEmail, SopRun, StepRecord
from tasks.records import StepCall, once

PLAN = compile_plan(load_sop(PROJECT_ROOT / "sop_definitions" / "lead-qualification.yaml"))


def new_lead(url: str, email: str = "ana@example.com") -> str:
    with transaction(url) as session:
        return add_lead(session, LeadIn(email=email, company="Acme", title="VP Sales", employees=400))[0].id


def count(url: str, model, *where) -> int:
    with transaction(url) as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def in_threads(n: int, work) -> list:
    results, barrier = [None] * n, threading.Barrier(n)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = work()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_a_lead_is_stored_once_per_email(store_url):
    first = new_lead(store_url, "Ana@Example.com")
    with transaction(store_url) as session:
        again, created = add_lead(session, LeadIn(email="ana@example.com "))
    assert again.id == first and created is False
    assert again.created_at.tzinfo is not None and again.created_at.utcoffset() == timezone.utc.utcoffset(None)


def test_concurrent_claims_give_one_run_per_sop_and_lead(store_url):
    lead_id = new_lead(store_url)

    def claim() -> str:
        with transaction(store_url) as session:
            return runs.ensure_run(session, "lead-qualification", lead_id).id

    assert len(set(in_threads(4, claim))) == 1
    assert count(store_url, SopRun) == 1


def test_only_the_first_flow_run_owns_a_run(store_url):
    lead_id = new_lead(store_url)
    with transaction(store_url) as session:
        assert runs.begin_run(session, "s", lead_id, "flow-a", 3, "h" * 64) is not None
    with transaction(store_url) as session:
        assert runs.begin_run(session, "s", lead_id, "flow-b", 3, "h" * 64) is None
        again = runs.begin_run(session, "s", lead_id, "flow-a", 4, "x" * 64)
        assert (again.sop_version, again.sop_hash) == (3, "h" * 64)  # the version the run started on


def test_a_second_record_of_a_step_rolls_back_its_effects(store_url):
    lead_id = new_lead(store_url)
    with transaction(store_url) as session:
        run_id = runs.ensure_run(session, "s", lead_id).id
    with pytest.raises(IntegrityError):
        for _ in range(2):
            with transaction(store_url) as session:
                session.add(OutboxEmail(sop_run_id=run_id, step_id="mail", lead_id=lead_id, to_address="a@b.co",
                                        subject="s", body_text="t"))
                runs.record_step(session, run_id, "mail", "email", "completed", {}, session.get(SopRun, run_id).created_at)
    assert count(store_url, OutboxEmail) == 1 and count(store_url, StepRecord) == 1


def test_a_step_acts_once_however_often_and_concurrently_it_is_run(store_url, monkeypatch):
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    lead_id = new_lead(store_url)
    with transaction(store_url) as session:
        run_id = runs.ensure_run(session, PLAN.sop.id, lead_id).id
    call = StepCall(PLAN, run_id, lead_id, "follow_up_email")
    acted = []

    def act(session, call, context):
        acted.append(1)
        session.add(OutboxEmail(sop_run_id=call.run_id, step_id=call.step_id, lead_id=call.lead_id,
                                to_address=context["lead"]["email"], subject="hi", body_text="hello"))
        return {"sent_to": "lead"}

    results = in_threads(3, lambda: once(call, act)) + [once(call, act)]
    assert all(r == {"status": "completed", "sent_to": "lead"} for r in results)
    assert count(store_url, OutboxEmail, OutboxEmail.sop_run_id == run_id) == 1
    assert len(acted) >= 1 and count(store_url, StepRecord) == 1


def test_a_false_condition_records_a_skip_and_acts_never(store_url, monkeypatch):
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    lead_id = new_lead(store_url)  # no score yet: `lead.score < 50` cannot hold
    with transaction(store_url) as session:
        run_id = runs.ensure_run(session, PLAN.sop.id, lead_id).id
    result = once(StepCall(PLAN, run_id, lead_id, "send_to_nurture"), lambda *a: pytest.fail("acted"))
    assert result == {"status": "skipped", "reason": "condition not met: lead.score < 50"}


def test_asks_are_numbered_and_answers_kept_once(store_url):
    lead_id = new_lead(store_url)
    with transaction(store_url) as session:
        run_id = runs.ensure_run(session, "s", lead_id).id
        first = approvals.open_ask(session, run_id, "ok", "manager", "Approve?", None)
        assert approvals.open_ask(session, run_id, "ok", "manager", "Approve?", None).id == first.id
        approvals.record_answer(session, first.id, "approve", "Eve", "", "Eve is not on the roster")
        approvals.record_answer(session, first.id, "reject", "Maria Lopez", "late", None)  # no overwrite
    with transaction(store_url) as session:
        assert [(a.ask, a.approver, a.accepted) for a in approvals.previous_asks(session, run_id, "ok")] == [
            (0, "Eve", False)]
        second = approvals.open_ask(session, run_id, "ok", "manager", "Approve?", None)
        assert second.ask == 1
        assert [(a.ask, r.id) for a, r in approvals.waiting(session)] == [(1, run_id)]


def test_a_run_decides_on_its_own_score_not_another_sops(store_url, monkeypatch):
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    lead_id = new_lead(store_url)
    with transaction(store_url) as session:
        run_id = runs.ensure_run(session, PLAN.sop.id, lead_id).id
        started = session.get(SopRun, run_id).created_at
        runs.record_step(session, run_id, "score_lead", "score", "completed",
                         {"score": 90, "grade": "A", "breakdown": [{"rule": "Senior title", "points": 90}]}, started)
        session.get(Lead, lead_id).score = 10  # another SOP's score step scored the same lead lower meanwhile
    result = once(StepCall(PLAN, run_id, lead_id, "send_to_nurture"), lambda *a: pytest.fail("nurtured a 90"))
    assert result == {"status": "skipped", "reason": "condition not met: lead.score < 50"}


def test_only_the_scoring_model_writes_the_leads_score(store_url, monkeypatch):
    from tasks.score import _score

    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    prospecting = compile_plan(load_sop(PROJECT_ROOT / "sop_definitions" / "prospecting.yaml"))
    lead_id = new_lead(store_url)
    with transaction(store_url) as session:
        model_run = runs.ensure_run(session, PLAN.sop.id, lead_id).id
        other_run = runs.ensure_run(session, prospecting.sop.id, lead_id).id
    scored = once(StepCall(PLAN, model_run, lead_id, "score_lead"), _score)
    with transaction(store_url) as session:
        assert (session.get(Lead, lead_id).score, session.get(Lead, lead_id).grade) == (scored["score"], scored["grade"])
    rescored = once(StepCall(prospecting, other_run, lead_id, "rescore"), _score)  # scored last, by another SOP
    assert rescored["score"] != scored["score"]
    with transaction(store_url) as session:
        lead = session.get(Lead, lead_id)
        assert (lead.score, lead.grade, lead.fields["stage"]) == (scored["score"], scored["grade"], scored["stage"])
        assert runs.step_results(session, other_run)["rescore"]["score"] == rescored["score"]
