"""Engagement events: stored and counted, recorded from the CLI and the HTTP intake, scored by the score step."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import httpx
import pytest
import yaml
from sqlalchemy import select

from sopflow.cli import main
from sopflow.leads import LeadIn
from sopflow.loader import load_sop
from sopflow.plan import compile_plan
from sopflow.store import engagement, runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import Engagement, Lead, StepRecord
from tasks.records import StepCall, once, step_context
from tests.intake_server import running_intake
from tasks.score import _score

NOW = datetime.now(timezone.utc)
AUTH = {"Authorization": "Bearer s3cret"}


def new_lead(url: str | None = None, **fields) -> str:
    with transaction(url) as session:
        return add_lead(session, LeadIn(email="ana@example.com", **fields))[0].id


def events(url: str | None = None) -> list[tuple[str, str, str | None]]:
    with transaction(url) as session:
        return [tuple(row) for row in session.execute(select(Engagement.lead_id, Engagement.kind, Engagement.source))]


@pytest.fixture
def sqlite_store(tmp_path, monkeypatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    return url


def test_counts_are_per_kind_within_the_window_and_bad_input_stores_nothing(store_url):
    lead_id = new_lead(store_url)
    with transaction(store_url) as session:
        for kind, days in [("opened", 1), ("opened", 29), ("opened", 31), ("replied", 2), ("visit", 60)]:
            engagement.record(session, lead_id, kind, NOW - timedelta(days=days))
        with pytest.raises(ValueError, match="unknown engagement event 'clicked'; use one of opened, replied"):
            engagement.record(session, lead_id, "clicked")
        with pytest.raises(LookupError, match="no lead with id 'nope'"):
            engagement.record(session, "nope", "opened")
    with transaction(store_url) as session:
        assert engagement.counts(session, lead_id, NOW - timedelta(days=30)) == {
            "opened": 2, "replied": 1, "meeting": 0, "visit": 0}
        assert engagement.counts(session, lead_id, NOW - timedelta(days=90))["visit"] == 1
    assert len(events(store_url)) == 5


def test_cli_records_an_event(sqlite_store, capsys):
    lead_id = new_lead()
    assert main(["lead", "engage", lead_id, "--event", "replied", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["lead_id"], out["event"], datetime.fromisoformat(out["occurred_at"]) >= NOW) == (lead_id, "replied", True)
    assert events() == [(lead_id, "replied", "cli")]


def test_cli_refuses_an_unknown_lead_and_an_unknown_event(sqlite_store, capsys):
    assert main(["lead", "engage", "no-such-lead", "--event", "opened"]) == 1
    error = capsys.readouterr().err.strip()
    assert "no-such-lead" in error and error.count("\n") == 0
    with pytest.raises(SystemExit) as exited:
        main(["lead", "engage", "no-such-lead", "--event", "clicked"])
    assert exited.value.code == 2
    assert events() == []


@pytest.fixture
def intake(sqlite_store):
    with running_intake(token="s3cret") as url, httpx.Client(base_url=url, timeout=10) as client:
        yield client


def test_intake_records_engagement(intake):
    lead_id = new_lead()
    response = intake.post(f"/leads/{lead_id}/engagement", json={"event": "meeting"}, headers=AUTH)
    assert (response.status_code, response.json()["lead_id"], response.json()["event"]) == (201, lead_id, "meeting")
    assert events() == [(lead_id, "meeting", "intake")]


@pytest.mark.parametrize(("path", "body", "token", "status"), [
    ("/leads/{id}/engagement", {"event": "clicked"}, "s3cret", 422),
    ("/leads/{id}/engagement", {"event": "opened", "extra": 1}, "s3cret", 422),
    ("/leads/{id}/engagement", None, "s3cret", 422),
    ("/leads/no-such-lead/engagement", {"event": "opened"}, "s3cret", 404),
    ("/leads/{id}/engagement", {"event": "opened"}, "wrong", 401),
    ("/leads/{id}/engagements", {"event": "opened"}, "s3cret", 404),
])
def test_intake_refuses_bad_engagement_and_stores_nothing(intake, path, body, token, status):
    lead_id = new_lead()
    response = intake.post(path.format(id=lead_id), json=body, headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == status, response.text
    assert events() == []


SOP = {
    "id": "engaged", "name": "Engaged leads", "version": 1, "owner": "Dana", "roles": {"ops": ["Dana"]},
    "objective": {"statement": "More SQLs", "metric": "SQLs", "baseline": 1, "target": 2, "deadline": "2030-01-01"},
    "trigger": {"event": "new_lead"}, "review": {"every": "12w", "owner": "ops"},
    "steps": [
        {"id": "score_lead", "kind": "score", "owner": "ops", "decay_days": 14, "scores_lead": True,
         "caps": {"engagement": 30},
         "stages": {"sql": 50, "mql": 25}, "rules": [
             {"label": "Senior", "field": "title", "contains_any": ["vp"], "points": 30},
             {"label": "Replied", "field": "replied", "at_least": 1, "points": 20, "group": "engagement"},
             {"label": "Met", "field": "meeting", "at_least": 1, "points": 25, "group": "engagement"},
             {"label": "No visits", "field": "visit", "at_most": 0, "points": -5, "group": "negative"}]},
        {"id": "hand_over", "kind": "update_lead", "owner": "ops", "status": "working",
         "when": 'lead.stage == "sql" and lead.replied >= 1'},
    ],
}


def test_the_score_step_counts_recent_engagement_and_stores_the_stage(store_url, monkeypatch, tmp_path):
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    (tmp_path / "engaged.yaml").write_text(yaml.safe_dump(SOP))
    plan = compile_plan(load_sop(tmp_path / "engaged.yaml"))
    lead_id = new_lead(store_url, title="VP Sales")
    with transaction(store_url) as session:
        session.get(Lead, lead_id).fields = {"plan": "pro"}
        for kind, days in [("replied", 3), ("meeting", 13), ("meeting", 20), ("visit", 15)]:
            engagement.record(session, lead_id, kind, NOW - timedelta(days=days))
        run_id = runs.ensure_run(session, plan.sop.id, lead_id).id
    result = once(StepCall(plan, run_id, lead_id, "score_lead"), _score)
    # fit 30; engagement 20 + 25 = 45 capped at 30; the visit is older than 14 days: -5.
    assert (result["score"], result["grade"], result["stage"]) == (55, "C", "sql")
    assert result["groups"]["engagement"] == {"raw": 45, "cap": 30, "capped": 30}
    assert {(b["rule"], b["group"], b["points"]) for b in result["breakdown"]} == {
        ("Senior", "fit", 30), ("Replied", "engagement", 20), ("Met", "engagement", 25), ("No visits", "negative", -5)}
    with transaction(store_url) as session:
        lead = session.get(Lead, lead_id)
        assert (lead.score, lead.grade, lead.fields) == (55, "C", {"plan": "pro", "stage": "sql"})
        record = session.scalar(select(StepRecord).where(StepRecord.step_id == "score_lead"))
        assert record.result["stage"] == "sql" and record.result["groups"]["fit"]["capped"] == 30
        context = step_context(session, StepCall(plan, run_id, lead_id, "hand_over"))
        assert (context["lead"]["stage"], context["lead"]["replied"], context["lead"]["meeting"]) == ("sql", 1, 2)
        assert plan.steps["hand_over"].condition.evaluate(context) is True
