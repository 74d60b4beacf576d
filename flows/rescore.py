"""The rescoring flow: recomputes every open lead's score, grade and stage with the lead's scoring model.

The scoring model is the one score step among all SOPs marked `scores_lead: true`. Scheduled
(deployments/serve.py decides), so engagement older than the step's `decay_days` stops counting
even when nothing new happens. Takes no parameters, so no personal data.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from sopflow.catalog import load_all
from sopflow.logs import redact_everywhere
from sopflow.rescoring import rescore_open_leads
from sopflow.schema import ScoreStep


def scoring_model() -> tuple[str, ScoreStep]:
    """(SOP id, step) of the lead's scoring model; ValueError when no score step is marked `scores_lead: true`."""
    found = [(sop_id, step) for sop_id, loaded in sorted(load_all().items())
             for step in loaded.sop.steps if isinstance(step, ScoreStep) and step.scores_lead]
    if not found:
        raise ValueError("no score step is the lead's scoring model; add `scores_lead: true` to the score step "
                         "whose score leads should carry")
    return found[0]  # `sopflow validate` refuses a second one


def rescore_leads() -> dict[str, Any]:
    """Rescore every open lead with the scoring model's rules."""
    sop_id, step = scoring_model()
    return {"sop": sop_id, "step": step.id, "changed": rescore_open_leads(step)}


@flow(name="sopflow-rescore", persist_result=False)
def rescore() -> dict[str, Any]:
    """Recompute score, grade and stage of every open lead with the scoring model's rules, in the database."""
    redact_everywhere()
    outcome = rescore_leads()
    get_run_logger().info("Rescored open leads with %s/%s: %d changed.", outcome["sop"], outcome["step"],
                          outcome["changed"])
    return outcome
