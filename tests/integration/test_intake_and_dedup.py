"""Leads arrive once: duplicates give one run per (SOP, lead); bad intake payloads store nothing."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import func, select

from sopflow.store.models import Lead, SopRun
from tests.support import cli_json, wait_for

pytestmark = pytest.mark.server


def post_lead(up, payload, token: str | None = None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token or up.token}"}
    return httpx.post(f"{up.intake_url}/leads", json=payload, headers=headers, timeout=180)


def flow_runs_for(up, lead_id: str) -> list[dict]:
    response = httpx.post(f"{up.api_url}/flow_runs/filter", timeout=10, json={
        "flow_runs": {"name": {"any_": [f"lead-{lead_id}"]}}, "sort": "START_TIME_DESC", "limit": 50})
    return response.json()


def counts(up) -> tuple[int, int]:
    with up.store() as session:
        return session.scalar(select(func.count()).select_from(Lead)), session.scalar(select(func.count()).select_from(SopRun))


def test_same_lead_submitted_many_times_gives_one_run_per_sop(sopflow_up):
    email = f"dup-{uuid.uuid4().hex[:8]}@example.com"
    payload = {"email": email, "name": "Sam Dup", "company": "Twice Inc", "title": "Director", "employees": 300}
    with ThreadPoolExecutor(max_workers=4) as pool:  # concurrent submissions through the intake ...
        responses = list(pool.map(lambda _: post_lead(sopflow_up, payload), range(4)))
    assert {r.status_code for r in responses} == {201}, [r.text for r in responses]
    again = cli_json(sopflow_up.env, "lead", "add", "--email", email.upper())  # ... and the CLI, other case
    lead_ids = {r.json()["id"] for r in responses} | {again["id"]}
    assert len(lead_ids) == 1 and again["created"] is False
    lead_id = lead_ids.pop()
    assert sum(r.json()["created"] for r in responses) == 1

    with sopflow_up.store() as session:
        runs = session.scalars(select(SopRun).where(SopRun.lead_id == lead_id)).all()
    assert sorted(r.sop_id for r in runs) == ["custom-task", "email-then-approval", "lead-qualification"]
    wait_for(lambda: len(flow_runs_for(sopflow_up, lead_id)) == 3, "the three flow runs to exist")
    flow_runs = flow_runs_for(sopflow_up, lead_id)
    assert sorted(fr["id"] for fr in flow_runs) == sorted(r.flow_run_id for r in runs)


@pytest.mark.parametrize("payload, field", [
    ({"name": "No Email"}, "email"),
    ({"email": "not-an-email"}, "email"),
    ({"email": "x@example.com", "employees": -5}, "employees"),
    ({"email": "x@example.com", "employees": "many"}, "employees"),
    ({"email": "x@example.com", "compnay": "Typo Ltd"}, "compnay"),
    ({"email": "x@example.com", "name": ""}, "name"),
    (["x@example.com"], None),
])
def test_bad_payload_gets_422_and_stores_nothing(sopflow_up, payload, field):
    before = counts(sopflow_up)
    response = post_lead(sopflow_up, payload)
    assert response.status_code == 422
    locs = [error["loc"] for error in response.json()["detail"]]
    assert all(error["msg"] for error in response.json()["detail"])
    if field:
        assert [field] in locs
    assert counts(sopflow_up) == before


def test_intake_refuses_wrong_token_and_non_json(sopflow_up):
    before = counts(sopflow_up)
    assert post_lead(sopflow_up, {"email": "tok@example.com"}, token="wrong").status_code == 401
    response = httpx.post(f"{sopflow_up.intake_url}/leads", content=b"{not json", timeout=10,
                          headers={"Authorization": f"Bearer {sopflow_up.token}"})
    assert response.status_code == 422 and "not JSON" in response.json()["detail"][0]["msg"]
    assert counts(sopflow_up) == before
