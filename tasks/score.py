"""`score` step: rule-based lead score, grade and breakdown, stored on the lead and the step."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from sqlalchemy.orm import Session

from sopflow.schema import ScoreStep
from sopflow.scoring import score_lead
from sopflow.store.leads import get_lead
from tasks.records import Result, StepCall, once


def _score(session: Session, call: StepCall, context: dict[str, Any]) -> Result:
    step = call.planned.step
    assert isinstance(step, ScoreStep)
    result = score_lead(step.rules, step.grades, context["lead"])
    lead = get_lead(session, call.lead_id)
    lead.score, lead.grade = result["score"], result["grade"]
    return result


@task(cache_policy=NO_CACHE)
def score(call: StepCall) -> Result:
    return once(call, _score)
