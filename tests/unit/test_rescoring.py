"""Set-based rescoring on SQLite and PostgreSQL gives exactly what score_lead gives, lead by lead."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from flows.rescore import rescore_leads, scoring_model
from sopflow.leads import lead_context
from sopflow.rescoring import rescore_open_leads
from sopflow.schema import ScoreStep
from sopflow.scoring import engagement_since, score_for_step
from sopflow.store import engagement
from sopflow.store.db import transaction
from sopflow.store.models import Lead
from tests.sop_samples import MINIMAL

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
STEP = ScoreStep.model_validate({
    "id": "score", "kind": "score", "owner": "ops", "decay_days": 30,
    "caps": {"fit": 60, "engagement": 40}, "stages": {"sql": 70, "mql": 40},
    "rules": [
        {"label": "Senior", "field": "title", "contains_any": ["vp", "director", "général", "50%"],
         "points": 30},
        {"label": "Big", "field": "employees", "at_least": 200, "points": 25},
        {"label": "Mid", "field": "employees", "at_least": 20, "at_most": 199, "points": 10},
        {"label": "Exactly 1000", "field": "employees", "equals": 1000, "points": 5},
        {"label": "Employees as text", "field": "employees", "one_of": ["42"], "points": 3},
        {"label": "Industry", "field": "industry", "one_of": ["Software", "fintech", "énergie"], "points": 20},
        {"label": "Website", "field": "source", "equals": "website", "points": 15},
        {"label": "Was graded A", "field": "grade", "equals": "A", "points": 1},
        {"label": "Was an SQL", "field": "stage", "equals": "sql", "points": 2},
        {"label": "Opened", "field": "opened", "at_least": 2, "points": 10, "group": "engagement"},
        {"label": "Replied", "field": "replied", "at_least": 1, "points": 20, "group": "engagement"},
        {"label": "Met", "field": "meeting", "at_least": 1, "points": 25, "group": "engagement"},
        {"label": "Never visited", "field": "visit", "at_most": 0, "points": -5, "group": "negative"},
        {"label": "Student", "field": "title", "contains_any": ["student", "intern"], "points": -40, "group": "negative"},
        {"label": "Competitor", "field": "company", "equals": "rival inc", "points": -100, "group": "negative"},
    ],
})

# (lead columns, fields, [(event kind, days before NOW)])
LEADS = [
    ({"title": "VP Sales", "employees": 500, "industry": "software", "source": "website"}, {}, []),
    ({"title": "  Director of IT ", "employees": 1000, "industry": "FinTech", "source": "Website"}, {},
     [("opened", 1), ("opened", 3), ("replied", 2), ("meeting", 5), ("visit", 1)]),
    ({"title": "DIRECTEUR GÉNÉRAL", "employees": 42, "industry": "ÉNERGIE"}, {"plan": "pro"}, [("visit", 29)]),
    ({"title": "Student intern", "employees": 5, "source": "referral"}, {}, [("replied", 40), ("meeting", 31)]),
    ({"title": "sales_rep 50% quota", "employees": 150, "company": "Rival Inc"}, {"stage": "sql"}, []),
    ({"title": None, "employees": None, "industry": None}, {}, [("opened", 10)]),
    ({"title": "Top 500 rep", "employees": 42, "industry": "retail"}, {}, [("opened", 1), ("opened", 2)]),
    ({"title": "VP", "employees": 199, "industry": "software", "grade": "A", "score": 99}, {"stage": "mql"},
     [("opened", 30), ("opened", 31), ("replied", 0)]),
    ({"title": "vp\tmarketing", "employees": 20, "industry": "software", "status": "working"}, [], []),
    ({"title": "Head", "employees": 19, "source": "website", "status": "nurture"}, {}, [("visit", 2)] * 3),
]
CLOSED = [({"title": "VP", "employees": 900, "status": status, "score": 7, "grade": "D"}, {"keep": 1},
           [("replied", 1)]) for status in ("customer", "disqualified", "closed_lost")]


def seed(url: str, rows: list) -> list[str]:
    ids = []
    with transaction(url) as session:
        for n, (columns, fields, events) in enumerate(rows):
            lead = Lead(email=f"lead{n}@example.com", fields=fields, **columns)
            session.add(lead)
            session.flush()
            for kind, days in events:
                engagement.record(session, lead.id, kind, NOW - timedelta(days=days, seconds=-1))
            ids.append(lead.id)
    return ids


def python_scores(url: str, ids: list[str], step: ScoreStep, now: datetime) -> dict[str, tuple]:
    """What the score task computes for each lead: lead_context plus the step's decayed counts."""
    with transaction(url) as session:
        out = {}
        for lead_id in ids:
            lead = session.get(Lead, lead_id)
            view = {**lead_context(lead), **engagement.counts(session, lead_id, engagement_since(step.decay_days, now))}
            result = score_for_step(step, view)
            out[lead_id] = (result["score"], result["grade"], result["stage"])
        return out


def stored(url: str, ids: list[str]) -> dict[str, tuple]:
    with transaction(url) as session:
        rows = session.execute(select(Lead.id, Lead.score, Lead.grade, Lead.fields).where(Lead.id.in_(ids)))
        return {i: (score, grade, (fields or {}).get("stage")) for i, score, grade, fields in rows}


def test_set_based_rescoring_equals_score_lead_for_every_open_lead(store_url):
    ids = seed(store_url, LEADS)
    expected = python_scores(store_url, ids, STEP, NOW)  # from the leads as they were (old score, grade, stage)
    assert rescore_open_leads(STEP, store_url, NOW) == len(ids)
    assert stored(store_url, ids) == expected
    assert len({score for score, _, _ in expected.values()}) >= 7  # the table really is varied
    assert {stage for _, _, stage in expected.values()} == {"lead", "mql", "sql"}


def test_caps_and_negative_points_apply_in_sql(store_url):
    ids = seed(store_url, LEADS[1:2] + LEADS[3:5])
    rescore_open_leads(STEP, store_url, NOW)
    # fit 30+25+5+20+15 = 95 capped at 60; engagement 10+20+25 = 55 capped at 40; no negatives.
    # The student: fit 0, old events decayed; never visited -5, student -40 (negatives are never capped).
    # The rival: "50%" is matched literally (30), mid-size 10, was an SQL 2; competitor -100, never visited -5.
    rows = stored(store_url, ids)
    assert [rows[i] for i in ids] == [(100, "A", "sql"), (-45, "D", "lead"), (-63, "D", "lead")]


def test_decay_drops_old_engagement_and_a_rerun_changes_nothing(store_url):
    [lead_id] = seed(store_url, [({"title": "Analyst", "employees": 250}, {}, [("replied", 10), ("meeting", 20)])])
    assert rescore_open_leads(STEP, store_url, NOW) == 1
    assert stored(store_url, [lead_id])[lead_id] == (25 + 40 - 5, "B", "mql")  # engagement 45, capped at 40
    assert rescore_open_leads(STEP, store_url, NOW) == 0  # nothing changed, nothing written
    assert rescore_open_leads(STEP, store_url, NOW + timedelta(days=15)) == 1  # the meeting is 35 days old
    assert stored(store_url, [lead_id])[lead_id] == (25 + 20 - 5, "C", "mql")
    rescore_open_leads(STEP, store_url, NOW + timedelta(days=25))  # and now the reply too
    assert stored(store_url, [lead_id])[lead_id] == (25 - 5, "D", "lead")


def test_closed_leads_are_untouched_and_other_fields_kept(store_url):
    ids = seed(store_url, CLOSED + LEADS[2:3])
    with transaction(store_url) as session:
        before = {i: session.get(Lead, i).updated_at for i in ids}
    assert rescore_open_leads(STEP, store_url, NOW) == 1
    with transaction(store_url) as session:
        leads = [session.get(Lead, i) for i in ids]
        assert [(x.score, x.grade, x.fields) for x in leads[:3]] == [(7, "D", {"keep": 1})] * 3
        assert [x.updated_at for x in leads[:3]] == [before[i] for i in ids[:3]]
        assert leads[3].fields == {"plan": "pro", "stage": leads[3].fields["stage"]}
        assert leads[3].fields["stage"] in ("lead", "mql", "sql")


def test_the_flow_rescores_with_the_declared_scoring_model(store_url, monkeypatch, tmp_path):
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    [lead_id] = seed(store_url, [({"title": "VP Sales", "employees": 500, "industry": "software"}, {}, [])])
    sop_id, step = scoring_model()
    assert (sop_id, step.id, step.scores_lead) == ("lead-qualification", "score_lead", True)
    assert rescore_leads() == {"sop": "lead-qualification", "step": "score_lead", "changed": 1}
    assert stored(store_url, [lead_id])[lead_id] == (75, "B", "sql")

    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(tmp_path))  # SOPs with score steps, none of them the model
    (tmp_path / "only.yaml").write_text(MINIMAL.replace("kind: update_lead", "kind: score").replace(
        "status: working", "rules: [{label: Big, field: employees, at_least: 200, points: 25}]"))
    with pytest.raises(ValueError, match="add `scores_lead: true` to the score step"):
        rescore_leads()
