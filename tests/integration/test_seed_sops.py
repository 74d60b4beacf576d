"""The seed SOPs run end to end, chained by the lead's status, through approvals, waits and webhooks. The two
chains through every seed SOP run on Prefect and the store on SQLite, then on PostgreSQL (`prefect_db_up`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from sopflow.store.models import Lead, OutboxEmail, Wait
from tests.support import add_lead, answer, finished, qualify, sop_run, sopflow, step_records, wait_for

pytestmark = pytest.mark.server


def emails(up, run_id: str) -> list[str]:
    with up.store() as session:
        return list(session.scalars(select(OutboxEmail.step_id).where(OutboxEmail.sop_run_id == run_id)))


def wake(up, lead_id: str, sop: str) -> None:
    run = wait_for(lambda: (r := sop_run(up, lead_id, sop)) is not None and r.state == "waiting" and r,
                   f"the {sop} run to wait")
    sopflow(up.env, "wake", run.flow_run_id)


def test_a_lead_goes_from_qualification_to_customer_and_follow_up(prefect_db_up, webhooks):
    up = prefect_db_up
    lead = add_lead(up, name="Grace Hopper", company="Compilers Ltd")["id"]
    qualify(up, lead)
    finished(up, lead)

    # presentation-demo starts because the lead became qualified
    answer(up, lead, "demo_outcome", "Alex Kim", "--input", "outcome=interested", "--input", "attendees=3")
    demo = finished(up, lead, "presentation-demo")
    assert emails(up, demo.id) == ["demo_invitation"]
    assert step_records(up, demo.id)["demo_outcome"].result["outcome"] == "interested"

    # negotiation-closing: a 20% discount needs the manager
    answer(up, lead, "deal_terms", "Alex Kim", "--input", "deal_value=48000", "--input", "discount_percent=20")
    answer(up, lead, "discount_approval", "Maria Lopez", "--notes", "Strategic logo")
    webhooks.fail_next = 2  # operations' endpoint is down for the first two attempts of the handoff
    answer(up, lead, "contract_signed", "Alex Kim")
    deal = finished(up, lead, "negotiation-closing")
    records = step_records(up, deal.id)
    assert records["discount_approval"].result["decision"] == "approve"
    terms = records["deal_terms"].result
    assert (terms["deal_value"], terms["discount_percent"]) == (48000, 20) and type(terms["deal_value"]) is int
    with up.store() as session:
        contract = session.scalar(select(OutboxEmail).where(OutboxEmail.sop_run_id == deal.id))
        assert "EUR 48,000" in contract.body_text and "20%" in contract.body_text and "20.0%" not in contract.body_text
        assert session.get(Lead, lead).status == "customer"

    # order-processing and post-sale-follow-up both start for the new customer
    answer(up, lead, "operations_acknowledged", "Omar Haddad")
    order = finished(up, lead, "order-processing")
    assert step_records(up, order.id)["handoff_to_operations"].result["delivered"] is True
    key = f"sopflow-{order.id}-handoff_to_operations"
    handoffs = [r for r in webhooks.accepted_on("/operations") if r.body["lead"]["id"] == lead]
    assert len(handoffs) == 1 and handoffs[0].headers["idempotency-key"] == key
    tries = [a for a in webhooks.attempts if a.headers.get("idempotency-key") == key]
    assert len(tries) == 3  # two 503s retried with backoff, then accepted once

    wake(up, lead, "post-sale-follow-up")
    answer(up, lead, "satisfaction_check", "Sofia Rossi", "--input", "satisfaction=5")
    follow_up = finished(up, lead, "post-sale-follow-up")
    assert emails(up, follow_up.id) == ["upsell_offer"]
    assert list(step_records(up, follow_up.id)) == ["settle_in", "satisfaction_check", "upsell_offer"]


def test_small_discount_skips_the_manager_and_unhappy_customer_is_escalated(prefect_db_up):
    up = prefect_db_up
    lead = add_lead(up)["id"]
    qualify(up, lead, "Priya Shah")
    answer(up, lead, "demo_outcome", "Priya Shah", "--input", "outcome=interested")
    answer(up, lead, "deal_terms", "Priya Shah", "--input", "deal_value=9000", "--input", "discount_percent=5")
    answer(up, lead, "contract_signed", "Priya Shah")
    deal = finished(up, lead, "negotiation-closing")
    assert step_records(up, deal.id)["discount_approval"].status == "skipped"

    wake(up, lead, "post-sale-follow-up")
    answer(up, lead, "satisfaction_check", "Sofia Rossi", "--input", "satisfaction=2", "--input", "concerns=Slow onboarding")
    answer(up, lead, "escalation", "Maria Lopez", "--notes", "Weekly check-ins for a month")
    follow_up = finished(up, lead, "post-sale-follow-up")
    assert emails(up, follow_up.id) == []
    assert step_records(up, follow_up.id)["escalation"].result["notes"] == "Weekly check-ins for a month"


def test_a_demo_that_did_not_interest_closes_the_lead(sopflow_up):
    up = sopflow_up
    lead = add_lead(up)["id"]
    qualify(up, lead, "Priya Shah")
    answer(up, lead, "demo_outcome", "Priya Shah", "--input", "outcome=not_interested")
    finished(up, lead, "presentation-demo")
    with up.store() as session:
        assert session.get(Lead, lead).status == "closed_lost"
    assert sop_run(up, lead, "negotiation-closing") is None


def test_a_nurtured_lead_that_engages_goes_back_to_sales(sopflow_up, webhooks):
    up = sopflow_up
    lead = add_lead(up, title="Analyst", employees="15", industry="retail", source="trade show")["id"]
    finished(up, lead)  # lead-qualification: score under 50, so nurture; prospecting starts
    wait_for(lambda: sop_run(up, lead, "prospecting") is not None, "prospecting to start for the nurtured lead")
    for event in ("opened", "opened", "replied", "meeting"):
        sopflow(up.env, "lead", "engage", lead, "--event", event)
    wake(up, lead, "prospecting")
    run = finished(up, lead, "prospecting")

    records = step_records(up, run.id)
    assert emails(up, run.id) == ["nurture_content"]
    assert records["rescore"].result["score"] >= 50 and records["hand_to_sales"].status == "completed"
    with up.store() as session:
        assert (session.get(Lead, lead).status, session.get(Lead, lead).owner) == ("working", "Alex Kim")
    posted = [r for r in webhooks.accepted_on("/sales") if r.body["lead_id"] == lead]
    assert len(posted) == 1 and posted[0].body["step"] == "rescore" and posted[0].body["result"]["score"] >= 50


def test_a_due_wait_resumes_by_itself_and_no_chore_runs_sit_beside_the_sop_runs(sopflow_up):
    """`sopflow up` resumes a run once its wait is due (nobody types `sopflow wake`), and every flow run
    and deployment on the server belongs to an SOP or a scheduled SOP-wide job: no every-minute chores."""
    up = sopflow_up
    lead = add_lead(up, title="Analyst", employees="15", industry="retail", source="trade show")["id"]
    finished(up, lead)
    run = wait_for(lambda: (r := sop_run(up, lead, "prospecting")) is not None and r.state == "waiting" and r,
                   "the prospecting run to wait")
    with up.store() as session:  # the wait's time has come, as it would after its days had passed
        wait = session.scalar(select(Wait).where(Wait.sop_run_id == run.id, Wait.done_at.is_(None)))
        wait.wake_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        session.commit()
    finished(up, lead, "prospecting")

    with up.api() as api:
        deployments = {d["name"] for d in api.post("/deployments/filter", json={"limit": 100}).json()}
        flows = {f["id"]: f["name"] for f in api.post("/flows/filter", json={"limit": 100}).json()}
        runs = api.post("/flow_runs/filter", json={"limit": 200, "sort": "START_TIME_DESC"}).json()
    sops = {path.stem for path in Path(up.env["SOPFLOW_SOP_DIR"]).glob("*.yaml")}
    # rescoring and reviews-due are daily, one review per review run; the audit is weekly, S&OP monthly
    assert deployments == sops | {"daily", "review", "weekly", "monthly"}
    scheduled = {"sopflow-rescore", "sopflow-reviews-due", "sopflow-review", "sopflow-audit", "sopflow-snop",
                 "audit-test-crashed"}  # the last: the audit test's crashed flow run
    assert runs and all(run["name"].startswith("lead-") for run in runs
                        if flows[run["flow_id"]] not in scheduled), sorted({flows[r["flow_id"]] for r in runs})
