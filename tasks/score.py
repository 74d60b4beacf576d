"""`score` step: the lead's score, grade, lifecycle stage and breakdown, stored on the step and, from the
scoring model (`scores_lead: true`), on the lead.

The step of the scoring model gives the lead `score` and `grade` (columns) and its stage in
`lead.fields["stage"]` (`sql`, `mql` or `lead`; Lead has no stage column, `fields` is its JSON dict);
any other score step leaves the lead's record alone. The step record's result holds the
score, grade, stage, per-group totals before and after caps (`groups`), and per matching rule its
group and points (`breakdown`). Engagement rules see the lead's events of the step's last
`decay_days` days, counted now; `flows/rescore.py` recomputes the same on a schedule.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from sqlalchemy.orm import Session

from sopflow.schema import ScoreStep
from sopflow.scoring import engagement_since, score_for_step
from sopflow.store import engagement
from sopflow.store.leads import get_lead
from tasks.records import Result, StepCall, once
from tasks.step_runs import shown


def _score(session: Session, call: StepCall, context: dict[str, Any]) -> Result:
    step = call.planned.step
    assert isinstance(step, ScoreStep)
    recent = engagement.counts(session, call.lead_id, engagement_since(step.decay_days))
    result = score_for_step(step, {**context["lead"], **recent})
    if step.scores_lead:
        lead = get_lead(session, call.lead_id)
        lead.score, lead.grade = result["score"], result["grade"]
        lead.fields = {**(lead.fields or {}), "stage": result["stage"]}  # a new dict, so the JSON change is saved
    return result


@task(cache_policy=NO_CACHE)
def score(call: StepCall) -> State:
    return shown(once(call, _score))
