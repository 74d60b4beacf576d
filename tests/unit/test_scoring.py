"""Rule-based lead scoring: matchers, points, grades and the breakdown."""

from __future__ import annotations

import pytest

from sopflow.schema import ScoreRule
from sopflow.scoring import rule_matches, score_lead

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
        {"rule": "Mid-market", "field": "employees", "points": 25},
        {"rule": "Inbound", "field": "source", "points": 15},
        {"rule": "Student", "field": "title", "points": -30},
    ]
    assert result["score"] == sum(item["points"] for item in result["breakdown"]) == 10
