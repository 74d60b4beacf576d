"""Leads arrive once through a running `sopflow up`, and only people with the Prefect login can answer for a roster.

The intake's answers to hostile input are tested against the real server in tests/unit/test_intake.py;
here it is the whole product: the intake process `sopflow up` starts, its dispatcher, and Prefect.
"""

from __future__ import annotations

import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from sopflow.store.models import Approval, Lead, SopRun
from tests.support import add_lead, cli_json, flow_state, remove_lead, run_cli, waiting_ask, wait_for

pytestmark = pytest.mark.server


def post_lead(up, payload, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or up.token}"}
    return httpx.post(f"{up.intake_url}/leads", json=payload, headers=headers, timeout=30)


def flow_runs_for(up, lead_id: str) -> list[dict]:
    with up.api() as api:
        return api.post("/flow_runs/filter", json={
            "flow_runs": {"name": {"any_": [f"lead-{lead_id}"]}}, "sort": "START_TIME_DESC", "limit": 50}).json()


def counts(up) -> tuple[int, int]:
    with up.store() as session:
        return session.scalar(select(func.count()).select_from(Lead)), session.scalar(select(func.count()).select_from(SopRun))


def test_same_lead_submitted_many_times_gives_one_run_per_sop(sopflow_up):
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    payload = {"email": email, "name": "Sam Dup", "company": "Twice Inc", "title": "Director", "employees": 300}
    with ThreadPoolExecutor(max_workers=4) as pool:  # concurrent submissions through the intake ...
        responses = list(pool.map(lambda _: post_lead(sopflow_up, payload), range(4)))
    assert sorted(r.status_code for r in responses) == [200, 200, 200, 201], [r.text for r in responses]
    again = cli_json(sopflow_up.env, "lead", "add", "--email", email.upper())  # ... and the CLI, other case
    lead_ids = {r.json()["id"] for r in responses} | {again["id"]}
    assert len(lead_ids) == 1 and again["created"] is False
    lead_id = lead_ids.pop()
    assert sum(r.json()["created"] for r in responses) == 1

    with sopflow_up.store() as session:
        runs = session.scalars(select(SopRun).where(SopRun.lead_id == lead_id)).all()
    assert sorted(r.sop_id for r in runs) == ["custom-task", "email-then-approval", "lead-qualification"]
    wait_for(lambda: len(flow_runs_for(sopflow_up, lead_id)) == 3, "the three flow runs to exist")
    with sopflow_up.store() as session:
        stored = sorted(session.scalars(select(SopRun.flow_run_id).where(SopRun.lead_id == lead_id)))
    assert sorted(fr["id"] for fr in flow_runs_for(sopflow_up, lead_id)) == stored


def test_the_running_intake_refuses_bad_input_and_stores_nothing(sopflow_up):
    before = counts(sopflow_up)
    assert post_lead(sopflow_up, {"email": "tok@example.com"}, token="wrong").status_code == 401
    bad = post_lead(sopflow_up, {"email": "x@example.com", "name": "Jane\u0000", "employees": 2**40})
    assert bad.status_code == 422 and {e["loc"][0] for e in bad.json()["detail"]} == {"name", "employees"}
    assert counts(sopflow_up) == before


def test_without_the_prefect_login_nobody_can_answer_for_the_manager(sopflow_up):
    lead = add_lead(sopflow_up)["id"]
    ask = wait_for(lambda: waiting_ask(sopflow_up, lead, "rep_qualification"), "the rep's ask")
    wait_for(lambda: flow_state(sopflow_up, ask["run_id"]) == "PAUSED", "the run to be suspended")
    answer = {"run_input": {"decision": "approve", "approver": "Alex Kim", "notes": "forged"}}
    resume = f"{sopflow_up.api_url}/flow_runs/{ask['run_id']}/resume"
    for auth in (None, httpx.BasicAuth("sopflow", "guess"), httpx.BasicAuth("admin", "admin")):
        refused = httpx.post(resume, json=answer, auth=auth, timeout=10)
        assert refused.status_code == 401, refused.text
    assert httpx.post(f"{sopflow_up.api_url}/flow_runs/filter", json={}, timeout=10).status_code == 401
    assert httpx.get(f"{sopflow_up.api_url}/health", timeout=10).status_code == 200  # health needs no login

    assert flow_state(sopflow_up, ask["run_id"]) == "PAUSED"
    with sopflow_up.store() as session:
        assert session.scalar(select(func.count()).where(
            Approval.answered_at.is_not(None), Approval.sop_run_id.in_(
                select(SopRun.id).where(SopRun.lead_id == lead)))) == 0

    # the CLI finds the login `sopflow up` keeps in its home, so a rep can still answer
    done = run_cli(sopflow_up.env, "approve", ask["run_id"], "--approver", "Alex Kim")
    assert "the run continues" in done.stdout
    wait_for(lambda: waiting_ask(sopflow_up, lead, "manager_approval"), "the manager's ask, after the rep answered")


def test_a_csv_import_starts_each_new_leads_runs_once_and_importing_it_again_starts_none(sopflow_up, tmp_path):
    tag = uuid.uuid4().hex[:8]
    emails = [f"csv-{n}-{tag}@example.com" for n in range(6)]
    rows = [f"{email},CSV Lead {n},Csv Inc,VP Sales,500" for n, email in enumerate(emails)]  # no status chain
    csv = tmp_path / "leads.csv"  # a header as people write it, a duplicate row and a bad one among them
    csv.write_text("E-mail, Full Name ,Company,Job Title,Employees\n" + "\n".join(
        rows[:3] + [rows[1].upper(), f"not-an-email-{tag},Bad Row,Csv Inc,student,3"] + rows[3:]) + "\n")
    done = run_cli(sopflow_up.env, "leads", "import", str(csv), "--json", check=False)
    assert done.returncode == 1  # one row rejected, the others imported
    summary = json.loads(done.stdout)
    assert (summary["imported"], summary["duplicates"]["in_file"], summary["rejected"]) == (6, 1, 1)
    assert [(p["line"], p["column"]) for p in summary["problems"] if p["kind"] == "rejected"] == [(6, "E-mail")]
    with sopflow_up.store() as session:
        leads = dict(session.execute(select(Lead.email, Lead.id).where(Lead.email.in_(emails))).tuples().all())
    assert sorted(leads) == sorted(emails)
    per_lead = summary["sop_runs_claimed"] // 6  # a run of every SOP that starts on a new lead
    assert per_lead >= 1 and summary["sop_runs_claimed"] == 6 * per_lead

    def started(lead_id: str) -> bool:  # the dispatcher of `sopflow up` starts them: each run once
        states = [r["state"]["type"] for r in flow_runs_for(sopflow_up, lead_id)]
        return len(states) == per_lead and set(states) <= {"COMPLETED", "PAUSED"}
    for lead_id in leads.values():
        wait_for(lambda lead_id=lead_id: started(lead_id), f"lead {lead_id}'s runs to start", timeout=180)
    again = run_cli(sopflow_up.env, "leads", "import", str(csv), "--json", check=False)
    assert json.loads(again.stdout)["duplicates"]["already_stored"] == 6
    assert json.loads(again.stdout)["sop_runs_claimed"] == 0
    with sopflow_up.store() as session:
        claimed = session.scalar(select(func.count()).select_from(SopRun).where(SopRun.lead_id.in_(leads.values())))
    assert claimed == 6 * per_lead
    for lead_id in leads.values():
        assert len(flow_runs_for(sopflow_up, lead_id)) == per_lead
        remove_lead(sopflow_up, lead_id)
