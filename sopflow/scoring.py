"""Rule-based lead scoring: every matching rule adds its points; the breakdown says which."""

from __future__ import annotations

from typing import Any

from sopflow.schema import ScoreRule


def rule_matches(rule: ScoreRule, value: Any) -> bool:
    """True when every matcher the rule gives holds for `value` (a missing value never matches)."""
    if value is None:
        return False
    text = str(value).strip().lower()
    checks = []
    if isinstance(rule.equals, (int, float)):
        checks.append(isinstance(value, (int, float)) and value == rule.equals)
    elif rule.equals is not None:
        checks.append(text == rule.equals.strip().lower())
    if rule.one_of is not None:
        checks.append(text in {option.strip().lower() for option in rule.one_of})
    if rule.contains_any is not None:
        checks.append(any(part.strip().lower() in text for part in rule.contains_any))
    for bound, holds in ((rule.at_least, lambda n, b: n >= b), (rule.at_most, lambda n, b: n <= b)):
        if bound is not None:
            checks.append(isinstance(value, (int, float)) and holds(value, bound))
    return all(checks)


def score_lead(rules: list[ScoreRule], grades: dict[str, int], lead: dict[str, Any]) -> dict[str, Any]:
    """Score `lead`; return {"score", "grade", "breakdown": [{"rule", "field", "points"}]}."""
    breakdown = [
        {"rule": rule.label, "field": rule.field, "points": rule.points}
        for rule in rules
        if rule_matches(rule, lead.get(rule.field))
    ]
    score = sum(item["points"] for item in breakdown)
    grade = next((g for g, floor in sorted(grades.items(), key=lambda kv: -kv[1]) if score >= floor), "D")
    return {"score": score, "grade": grade, "breakdown": breakdown}
