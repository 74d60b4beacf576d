"""`when:` conditions: what they evaluate to, and what they refuse."""

from __future__ import annotations

import pytest

from sopflow.conditions import ConditionError, parse_condition

CONTEXT = {
    "lead": {"score": 65, "industry": "software", "title": "VP Sales", "employees": None, "grade": "B"},
    "steps": {"manager_review": {"decision": "approve"}},
}

TRUE_OR_FALSE = [
    ("lead.score >= 60", True),
    ("lead.score > 65", False),
    ("lead.score == 65", True),
    ("lead.score != 65", False),
    ("50 < lead.score <= 65", True),
    ("50 < lead.score < 60", False),
    ('lead.industry in ["software", "fintech"]', True),
    ('lead.industry not in ["software", "fintech"]', False),
    ('"VP" in lead.title', True),
    ('lead.score >= 60 and lead.industry == "software"', True),
    ('lead.score >= 90 and lead.industry == "software"', False),
    ('lead.score >= 90 or lead.grade == "B"', True),
    ("not lead.score >= 60", False),
    ('steps.manager_review.decision == "approve"', True),
    ('steps.manager_review.decision == "reject"', False),
    ("lead.employees == None", True),
    ("lead.company == None", True),  # a field missing from the lead reads as None
    ("steps.not_run.decision == None", True),
    ("lead.score >= 60.5", True),
]


@pytest.mark.parametrize(("source", "expected"), TRUE_OR_FALSE)
def test_condition_evaluates(source: str, expected: bool) -> None:
    assert parse_condition(source).evaluate(CONTEXT) is expected


@pytest.mark.parametrize(
    "source",
    ["lead.employees >= 10", "lead.employees < 10", "lead.company > 'a'", "lead.score in lead.company"],
)
def test_missing_value_never_satisfies_an_ordering(source: str) -> None:
    assert parse_condition(source).evaluate(CONTEXT) is False


def test_names_lists_every_lead_field_and_step() -> None:
    condition = parse_condition('lead.score >= 60 and steps.manager_review.decision == "approve"')
    assert condition.names == {("lead", "score"), ("steps", "manager_review", "decision")}


REFUSED = [
    ("len(lead.name) > 3", "is not allowed"),  # function call
    ("lead.score + 10 > 60", "is not allowed"),  # arithmetic
    ('"abc".upper == "ABC"', "unknown name"),  # attribute on something that is not a name
    ("score >= 60", "unknown name 'score'"),  # bare name
    ("lead >= 60", "unknown name 'lead'"),  # lead without a field
    ("lead.score.value >= 60", "unknown name"),  # too deep
    ("steps.review == 1", "unknown name"),  # step without a value
    ("lambda: True", "is not allowed"),
    ('lead["score"] >= 60', "is not allowed"),  # subscript
    ("lead.name is None", "operator Is is not allowed"),
    ("lead.score >=", "cannot parse condition"),
    ("lead.score = 60", "cannot parse condition"),
    ("[x for x in lead.name]", "is not allowed"),
]


@pytest.mark.parametrize(("source", "reason"), REFUSED)
def test_disallowed_constructs_raise(source: str, reason: str) -> None:
    with pytest.raises(ConditionError, match=reason.replace("[", r"\[")):
        parse_condition(source)


def test_negative_number_literal_is_allowed() -> None:
    # Rules can give negative points, so a score can be compared with a negative number.
    assert parse_condition("lead.score > -10").evaluate({"lead": {"score": -5}}) is True


COMPARED = [
    ('steps.demo.outcome == "interested"', [(("steps", "demo", "outcome"), ("interested",))]),
    ('"interested" != steps.demo.outcome', [(("steps", "demo", "outcome"), ("interested",))]),
    ('lead.status in ["new", "working"]', [(("lead", "status"), ("new", "working"))]),
    ('lead.status not in ("new", null)', [(("lead", "status"), ("new", None))]),
    ("lead.score == -5", [(("lead", "score"), (-5,))]),
    ('lead.score >= 5 and "vp" in lead.title', []),  # orderings and substring tests compare no value
    ("lead.status == lead.stage", []),  # two names: no literal value
    ('not (lead.grade == "A" or steps.r.decision == "approve")',
     [(("lead", "grade"), ("A",)), (("steps", "r", "decision"), ("approve",))]),
]


@pytest.mark.parametrize(("source", "expected"), COMPARED)
def test_compared_values(source: str, expected: list) -> None:
    assert parse_condition(source).compared_values() == expected
