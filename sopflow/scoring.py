"""Rule-based lead scoring: matching rules add points to their group (fit, engagement, negative);
fit and engagement totals are capped, the sum is the score; thresholds give the grade and stage."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sopflow.schema import ScoreRule, ScoreStep

GROUPS = ("fit", "engagement", "negative")
STAGES = ("sql", "mql")  # highest first; below them all a lead is at stage `lead`
ENGAGEMENT_KINDS = ("opened", "replied", "meeting", "visit")  # also lead fields: recent events of each kind


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


def grade_for(score: int, grades: dict[str, int]) -> str:
    """The highest grade whose lowest score `score` reaches; D below them all."""
    return next((g for g, floor in sorted(grades.items(), key=lambda kv: -kv[1]) if score >= floor), "D")


def stage_for(score: int, stages: dict[str, int] | None = None) -> str:
    """The lifecycle stage: `sql`, `mql` or `lead`, by the step's `stages` thresholds."""
    stages = ScoreStep.DEFAULT_STAGES if stages is None else stages
    return next((s for s in STAGES if s in stages and score >= stages[s]), "lead")


def engagement_since(decay_days: int, now: datetime | None = None) -> datetime:
    """The oldest moment an engagement event still counts: `decay_days` days before `now`."""
    return (now or datetime.now(timezone.utc)) - timedelta(days=decay_days)


def score_lead(
    rules: list[ScoreRule], grades: dict[str, int], lead: dict[str, Any],
    caps: dict[str, int] | None = None, stages: dict[str, int] | None = None,
) -> dict[str, Any]:
    """Score `lead`: each group's points summed, then capped (`caps`; negative never is), then added up.

    Returns {"score", "grade", "stage", "groups": {group: {"raw", "cap", "capped"}},
    "breakdown": [{"rule", "field", "group", "points"}]} — the breakdown lists exactly the matching rules.
    """
    breakdown = [
        {"rule": rule.label, "field": rule.field, "group": rule.group, "points": rule.points}
        for rule in rules
        if rule_matches(rule, lead.get(rule.field))
    ]
    groups = {}
    for group in GROUPS:
        raw = sum(item["points"] for item in breakdown if item["group"] == group)
        cap = (caps or {}).get(group) if group != "negative" else None
        groups[group] = {"raw": raw, "cap": cap, "capped": raw if cap is None else min(raw, cap)}
    score = sum(totals["capped"] for totals in groups.values())
    return {"score": score, "grade": grade_for(score, grades), "stage": stage_for(score, stages),
            "groups": groups, "breakdown": breakdown}


def score_for_step(step: ScoreStep, lead: dict[str, Any]) -> dict[str, Any]:
    """`score_lead` with the step's rules, grades, caps and stages."""
    return score_lead(step.rules, step.grades, lead, step.caps, step.stages)
