"""Set-based rescoring: every open lead's score, grade and stage recomputed by one SQL statement.

    WITH base AS MATERIALIZED (SELECT l.id, <fields the rules read, text folded once> FROM leads l
           LEFT JOIN (SELECT lead_id, count(*) FILTER (WHERE kind = ..) AS replied, .. FROM engagements
                      WHERE occurred_at >= :since GROUP BY lead_id) recent ON recent.lead_id = l.id
           WHERE l.status NOT IN (customer, disqualified, closed_lost)),
         scored AS MATERIALIZED (SELECT id, <points per group, capped, summed> AS score FROM base)
    UPDATE leads SET score = scored.score, grade = CASE .., fields = <fields with stage> FROM scored
    WHERE leads.id = scored.id AND (score, grade or stage changed)

It mirrors `sopflow.scoring.score_lead` rule for rule: text is compared as `str(value).strip().lower()`
(SQLite's lower() folds ASCII only, so there text with other characters is folded by a Python function
registered on the connection; PostgreSQL's lower() follows LC_CTYPE, which folds like Python in UTF-8
locales); numbers as numbers; a missing value never matches. The stage goes into the `fields` JSON.
"""

from __future__ import annotations

import operator
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, String, and_, case, cast, false, func, literal, literal_column, or_, select, true, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql.elements import ColumnElement

from sopflow.schema import ScoreRule, ScoreStep
from sopflow.scoring import ENGAGEMENT_KINDS, GROUPS, STAGES, engagement_since
from sopflow.store.db import engine
from sopflow.store.models import Engagement, Lead

CLOSED = ("customer", "disqualified", "closed_lost")
NUMERIC = ("employees", "score", *ENGAGEMENT_KINDS)
WHITESPACE = "".join(c for c in map(chr, range(0x3001)) if c.isspace())  # what str.strip() strips
LEADS, EVENTS = Lead.__table__, Engagement.__table__


def _py_fold(value: Any) -> str | None:  # SQLite's sopflow_fold()
    return None if value is None else str(value).strip().lower()


def _fold(value: ColumnElement, numeric: bool, dialect: str) -> ColumnElement:
    """`str(value).strip().lower()` in SQL (a number's text needs no folding)."""
    if numeric:
        return cast(value, String)
    if dialect == "sqlite":  # printable ASCII folds the same in SQLite; anything else goes to Python
        return case((value.op("GLOB")("*[^ -~]*"), func.sopflow_fold(value)), else_=func.lower(func.trim(value)))
    return func.lower(func.btrim(value, WHITESPACE))


def _contains(text: ColumnElement, part: str, dialect: str) -> ColumnElement:
    """Python's `part in text`: a plain substring test (no LIKE wildcards to escape)."""
    return (func.instr(text, part) if dialect == "sqlite" else func.strpos(text, part)) > 0


def _is_text(rule: ScoreRule) -> bool:
    """Whether the rule compares the value as text (equals a string, one_of, contains_any)."""
    return rule.one_of is not None or rule.contains_any is not None or isinstance(rule.equals, str)


def _matches(rule: ScoreRule, row: Any, dialect: str) -> ColumnElement:
    """`rule_matches(rule, value)` in SQL, on a row of the `base` CTE: <field> and its folded <field>_text."""
    value, numeric = row[rule.field], rule.field in NUMERIC
    text = row[f"{rule.field}_text"] if _is_text(rule) else None
    checks: list[ColumnElement] = [] if rule.field in ENGAGEMENT_KINDS else [value.is_not(None)]  # counts: never null
    if isinstance(rule.equals, (int, float)):
        checks.append(value == rule.equals if numeric else false())
    elif rule.equals is not None:
        checks.append(text == rule.equals.strip().lower())
    if rule.one_of is not None:
        checks.append(text.in_([option.strip().lower() for option in rule.one_of]))
    if rule.contains_any is not None:
        parts = [_contains(text, part.strip().lower(), dialect) for part in rule.contains_any]
        checks.append(or_(*parts) if parts else false())
    for bound, holds in ((rule.at_least, operator.ge), (rule.at_most, operator.le)):
        if bound is not None:
            checks.append(holds(value, bound) if numeric else false())
    return and_(*checks) if checks else true()


def _score(step: ScoreStep, row: Any, dialect: str) -> ColumnElement:
    """The sum over groups of each group's points, fit and engagement capped."""
    number, smaller = lambda n: literal_column(str(int(n))), func.min if dialect == "sqlite" else func.least
    score: ColumnElement = number(0)
    for group in GROUPS:
        total: ColumnElement = number(0)
        for rule in (r for r in step.rules if r.group == group):
            total = total + case((_matches(rule, row, dialect), number(rule.points)), else_=number(0))
        cap = step.caps.get(group) if group != "negative" else None
        score = score + (total if cap is None else smaller(total, number(cap)))  # min/least of two values
    return score


def _recent_counts(step: ScoreStep, since: datetime) -> Any:
    """Per lead, its events of each kind the rules read, at or after `since` (None when no rule reads any)."""
    kinds = sorted({rule.field for rule in step.rules} & set(ENGAGEMENT_KINDS))
    columns = [func.count().filter(EVENTS.c.kind == kind).label(kind) for kind in kinds]
    query = select(EVENTS.c.lead_id, *columns).where(EVENTS.c.occurred_at >= since)
    return query.group_by(EVENTS.c.lead_id).subquery("recent") if kinds else None


def _with_stage(fields: ColumnElement, stage: ColumnElement, dialect: str) -> ColumnElement:
    if dialect == "sqlite":
        base = case((func.json_type(fields) == "object", fields), else_=literal_column("'{}'"))
        return func.json_set(base, "$.stage", stage)
    base = case((func.json_typeof(fields) == "object", fields), else_=literal_column("'{}'::json"))
    return cast(cast(base, JSONB).op("||")(func.jsonb_build_object("stage", stage)), JSON)


def rescore_statement(step: ScoreStep, since: datetime, dialect: str) -> Any:
    """The UPDATE that rescores every open lead whose score, grade or stage changes. MATERIALIZED keeps
    SQL from inlining and repeating work: each text field is folded once, each score computed once."""
    lead = LEADS.alias("l")
    values: dict[str, ColumnElement] = {name: lead.c[name] for name in ("name", "company", "title", "employees",
                                        "industry", "source", "status", "score", "grade")}
    values["stage"] = lead.c.fields["stage"].as_string()
    recent = _recent_counts(step, since)
    source: Any = lead if recent is None else lead.outerjoin(recent, recent.c.lead_id == lead.c.id)
    if recent is not None:
        values.update({kind: func.coalesce(recent.c[kind], 0) for kind in recent.c.keys() if kind != "lead_id"})
    used, texts = sorted({r.field for r in step.rules}), sorted({r.field for r in step.rules if _is_text(r)})
    columns = [values[f].label(f) for f in used]
    columns += [_fold(values[f], f in NUMERIC, dialect).label(f"{f}_text") for f in texts]
    base = (select(lead.c.id, *columns).select_from(source).where(lead.c.status.not_in(CLOSED))
            .cte("base").prefix_with("MATERIALIZED"))
    scored = select(base.c.id, _score(step, base.c, dialect).label("score")).cte("scored").prefix_with("MATERIALIZED")
    floors = [(scored.c.score >= f, literal(g)) for g, f in sorted(step.grades.items(), key=lambda kv: -kv[1])]
    grade = case(*floors, else_=literal("D")) if floors else literal("D")
    whens = [(scored.c.score >= step.stages[s], literal(s)) for s in STAGES if s in step.stages]
    stage = cast(case(*whens, else_=literal("lead")) if whens else literal("lead"), String)
    changed = or_(LEADS.c.score.is_distinct_from(scored.c.score), LEADS.c.grade.is_distinct_from(grade),
                  LEADS.c.fields["stage"].as_string().is_distinct_from(stage))
    return (update(LEADS).where(LEADS.c.id == scored.c.id, changed)
            .values(score=scored.c.score, grade=grade, fields=_with_stage(LEADS.c.fields, stage, dialect)))


def rescore_open_leads(rules_step: ScoreStep, url: str | None = None, now: datetime | None = None) -> int:
    """Recompute score, grade and stage of every open lead (engagement of the step's last `decay_days`
    days before `now`) in one statement; return how many leads changed."""
    since = engagement_since(rules_step.decay_days, now)
    with engine(url).begin() as connection:
        dialect = connection.dialect.name
        if dialect == "sqlite":
            connection.connection.driver_connection.create_function("sopflow_fold", 1, _py_fold, deterministic=True)
        changed = connection.execute(rescore_statement(rules_step, since, dialect)).rowcount
        if dialect == "sqlite":  # Python's sqlite3 gives no rowcount for a statement that starts with WITH
            changed = connection.exec_driver_sql("SELECT changes()").scalar_one()
        return changed
