"""Rule-based lead scoring: matchers, points, grades and the breakdown."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pydantic
import pytest

from sopflow.schema import ScoreRule, ScoreStep
from sopflow.scoring import engagement_since, rule_matches, score_for_step, score_lead, stage_for

GRADES = {"A": 80, "B": 60, "C": 40}


def rule(field: str = "industry", points: int = 10, label: str = "rule", **matchers: object) -> ScoreRule:
    return ScoreRule(label=label, field=field, points=points, **matchers)


MATCHES = [
    (rule(equals="software"), "software", True),
    (rule(equals="software"), " Software ", True),
    (rule(equals="software"), "fintech", False),
    (rule(one_of=["software", "fintech"]), "FinTech", True),
    (rule(one_of=["software", "fintech"]), "retail", False),
    (rule("title", contains_any=["vp", "director"]), "VP of Sales", True),
    (rule("title", contains_any=["VP", "Director"]), "sales director", True),
    (rule("title", contains_any=["vp", "director"]), "Account Executive", False),
    (rule("employees", at_least=200), 200, True),
    (rule("employees", at_least=200), 199, False),
    (rule("employees", at_most=199), 199, True),
    (rule("employees", at_most=199), 200, False),
    (rule("employees", at_least=20, at_most=199), 20, True),
    (rule("employees", at_least=20, at_most=199), 100, True),
    (rule("employees", at_least=20, at_most=199), 19, False),
    (rule("employees", at_least=20, at_most=199), 250, False),
    (rule("employees", at_least=20), "250", False),  # a range needs a number
    (rule(equals="software"), None, False),  # missing
    (rule("employees", at_most=199), None, False),  # missing never matches, even "at most"
    (rule(one_of=["software"], contains_any=["soft"]), "software", True),  # every matcher must hold
    (rule(one_of=["software"], contains_any=["fin"]), "software", False),
]


@pytest.mark.parametrize(("the_rule", "value", "expected"), MATCHES)
def test_rule_matches(the_rule: ScoreRule, value: object, expected: bool) -> None:
    assert rule_matches(the_rule, value) is expected


def test_numeric_equals_matches_the_same_number() -> None:
    # `equals: 200` in a YAML file reaches the rule as a number.
    assert rule_matches(rule("employees", equals=200), 200) is True


RULES = [
    rule("title", 30, "Senior title", contains_any=["vp", "director"]),
    rule("employees", 25, "Mid-market", at_least=200),
    rule("industry", 20, "Target industry", one_of=["software", "fintech"]),
    rule("source", 15, "Inbound", one_of=["website", "referral"]),
    rule("title", -30, "Student", contains_any=["student", "intern"]),
]

SCORES = [
    ({"title": "VP Sales", "employees": 500, "industry": "software", "source": "website"}, 90, "A"),
    ({"title": "VP Sales", "employees": 500, "industry": "software"}, 75, "B"),
    ({"title": "Director", "employees": 500}, 55, "C"),
    ({"title": "Director", "industry": "software"}, 50, "C"),
    ({"employees": 500, "industry": "software"}, 45, "C"),
    ({"industry": "software", "source": "referral"}, 35, "D"),
    ({}, 0, "D"),
    ({"title": "Student intern", "industry": "software"}, -10, "D"),
]


@pytest.mark.parametrize(("lead", "score", "grade"), SCORES)
def test_score_and_grade(lead: dict, score: int, grade: str) -> None:
    result = score_lead(RULES, GRADES, lead)
    assert (result["score"], result["grade"]) == (score, grade)


@pytest.mark.parametrize(("score", "grade"), [(80, "A"), (79, "B"), (60, "B"), (59, "C"), (40, "C"), (39, "D")])
def test_grade_thresholds_are_lowest_scores(score: int, grade: str) -> None:
    result = score_lead([rule("employees", score, at_least=0)], GRADES, {"employees": 1})
    assert result["grade"] == grade


def test_custom_grades() -> None:
    result = score_lead([rule(points=10, equals="software")], {"A": 10, "B": 5, "C": 1}, {"industry": "software"})
    assert result["grade"] == "A"


def test_breakdown_lists_exactly_the_matching_rules() -> None:
    lead = {"title": "Student", "employees": 300, "industry": "retail", "source": "website"}
    result = score_lead(RULES, GRADES, lead)
    assert result["breakdown"] == [
        {"rule": "Mid-market", "field": "employees", "group": "fit", "points": 25},
        {"rule": "Inbound", "field": "source", "group": "fit", "points": 15},
        {"rule": "Student", "field": "title", "group": "fit", "points": -30},
    ]
    assert result["score"] == sum(item["points"] for item in result["breakdown"]) == 10


def step(**keys: object) -> ScoreStep:
    return ScoreStep.model_validate({"id": "score", "kind": "score", "owner": "ops", **keys})


HUBSPOT = step(caps={"fit": 60, "engagement": 40}, stages={"sql": 70, "mql": 40}, rules=[
    {"label": "Senior", "field": "title", "contains_any": ["vp", "director"], "points": 30},
    {"label": "Mid-market", "field": "employees", "at_least": 200, "points": 25},
    {"label": "Target industry", "field": "industry", "one_of": ["software"], "points": 20},
    {"label": "Opened twice", "field": "opened", "at_least": 2, "points": 10, "group": "engagement"},
    {"label": "Replied", "field": "replied", "at_least": 1, "points": 20, "group": "engagement"},
    {"label": "Meeting", "field": "meeting", "at_least": 1, "points": 25, "group": "engagement"},
    {"label": "Many visits", "field": "visit", "at_least": 3, "points": 5, "group": "engagement"},
    {"label": "Never opened", "field": "opened", "at_most": 0, "points": -10, "group": "negative"},
    {"label": "Student", "field": "title", "contains_any": ["student"], "points": -40, "group": "negative"},
])
FIT = {"title": "VP Sales", "employees": 500, "industry": "software"}  # 75 points of fit, capped at 60
NONE = {"opened": 0, "replied": 0, "meeting": 0, "visit": 0}

GROUPED = [  # lead, score, grade, stage, (fit raw, engagement raw, negative)
    ({**FIT, **NONE}, 50, "C", "mql", (75, 0, -10)),  # fit capped at 60; never opened -10
    ({**FIT, **NONE, "opened": 2}, 70, "B", "sql", (75, 10, 0)),
    ({**FIT, **NONE, "opened": 3, "replied": 1, "meeting": 1, "visit": 4}, 100, "A", "sql", (75, 60, 0)),
    ({"title": "Analyst", **NONE, "opened": 1, "replied": 2}, 20, "D", "lead", (0, 20, 0)),
    ({"title": "Analyst", **NONE, "opened": 5, "replied": 1, "meeting": 2}, 40, "C", "mql", (0, 55, 0)),
    ({"title": "PhD student", **NONE, "replied": 1, "meeting": 1}, -10, "D", "lead", (0, 45, -50)),
    ({"title": "VP", **NONE, "opened": 2, "meeting": 1}, 65, "B", "mql", (30, 35, 0)),
    ({"title": "VP", "employees": 500}, 55, "C", "mql", (55, 0, 0)),  # counts missing: no engagement rule matches
]


@pytest.mark.parametrize(("lead", "score", "grade", "stage", "raw"), GROUPED)
def test_groups_caps_negative_points_and_stages(lead: dict, score: int, grade: str, stage: str, raw: tuple) -> None:
    result = score_for_step(HUBSPOT, lead)
    assert (result["score"], result["grade"], result["stage"]) == (score, grade, stage)
    groups = result["groups"]
    assert (groups["fit"]["raw"], groups["engagement"]["raw"], groups["negative"]["raw"]) == raw
    assert groups["fit"]["capped"] == min(raw[0], 60) and groups["engagement"]["capped"] == min(raw[1], 40)
    assert groups["negative"] == {"raw": raw[2], "cap": None, "capped": raw[2]}  # never capped
    assert sum(g["capped"] for g in groups.values()) == score
    for item in result["breakdown"]:
        assert item["group"] == {r.label: r.group for r in HUBSPOT.rules}[item["rule"]]


@pytest.mark.parametrize(("days_ago", "counted"), [(0, True), (29.99, True), (30, True), (30.01, False), (90, False)])
def test_engagement_decays_after_decay_days(days_ago: float, counted: bool) -> None:
    now = datetime(2025, 6, 1, tzinfo=timezone.utc)
    occurred = now - timedelta(days=days_ago)
    assert (occurred >= engagement_since(30, now)) is counted
    replied = int(occurred >= engagement_since(HUBSPOT.decay_days, now))
    result = score_for_step(HUBSPOT, {**NONE, "opened": 2, "replied": replied})
    assert result["score"] == (30 if counted else 10)


@pytest.mark.parametrize(("score", "stages", "stage"), [
    (70, {"sql": 70, "mql": 40}, "sql"), (69, {"sql": 70, "mql": 40}, "mql"), (40, {"sql": 70, "mql": 40}, "mql"),
    (39, {"sql": 70, "mql": 40}, "lead"), (-5, {"sql": 70, "mql": 40}, "lead"), (90, {"mql": 10}, "mql"),
    (90, {}, "lead"), (70, None, "sql"), (40, None, "mql"),  # None: the step's default thresholds
])
def test_stage_thresholds_are_lowest_scores(score: int, stages: dict | None, stage: str) -> None:
    assert stage_for(score, stages) == stage


def test_defaults_keep_existing_rules_as_fit_without_caps() -> None:
    plain = step(rules=[{"label": "Big", "field": "employees", "at_least": 1, "points": 500}])
    assert (plain.rules[0].group, plain.caps, plain.decay_days, plain.stages) == ("fit", {}, 30, {"sql": 70, "mql": 40})
    assert score_for_step(plain, {"employees": 5})["score"] == 500  # uncapped unless caps say so


@pytest.mark.parametrize(("keys", "message"), [
    ({"rules": [{"label": "x", "field": "title", "equals": "ceo", "points": 5, "group": "negative"}]},
     "negative group takes points of 0 or less, not 5"),
    ({"rules": [{"label": "x", "field": "title", "equals": "ceo", "points": 5, "group": "bonus"}]}, "group"),
    ({"caps": {"negative": 10}}, "caps.negative"),
    ({"caps": {"fit": -1}}, "greater than or equal to 0"),
    ({"stages": {"sql": 30, "mql": 40}}, "stages.sql (30) must be at least stages.mql (40)"),
    ({"stages": {"opportunity": 90}}, "stages.opportunity"),
    ({"decay_days": 0}, "decay_days"),
    ({"rules": [{"label": "x", "field": "clicks", "at_least": 1, "points": 5}]}, "field"),
])
def test_invalid_score_steps_are_refused(keys: dict, message: str) -> None:
    rules = [{"label": "ok", "field": "replied", "at_least": 1, "points": 5, "group": "engagement"}]
    with pytest.raises(pydantic.ValidationError) as error:
        step(**{"rules": rules, **keys})
    assert message in str(error.value)
