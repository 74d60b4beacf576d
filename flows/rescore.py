"""The rescoring flow: recomputes every open lead's score, grade and stage with an SOP's score rules.

Scheduled (not wired here: deployments/serve.py decides), so engagement older than the step's
`decay_days` stops counting even when nothing new happens. Takes only an SOP id, no personal data.
"""

from __future__ import annotations

from typing import Any

from prefect import flow, get_run_logger

from sopflow.catalog import load_all
from sopflow.logs import redact_everywhere
from sopflow.rescoring import rescore_open_leads
from sopflow.schema import ScoreStep


def score_step_of(sop_id: str) -> ScoreStep:
    """The first score step of the SOP `sop_id`; ValueError when there is no such SOP or step."""
    sops = load_all()
    if sop_id not in sops:
        raise ValueError(f"no SOP with id {sop_id!r} in the SOP directory; known: {', '.join(sorted(sops)) or 'none'}")
    step = next((s for s in sops[sop_id].sop.steps if isinstance(s, ScoreStep)), None)
    if step is None:
        raise ValueError(f"SOP {sop_id!r} has no score step to rescore with; pass the id of an SOP that has one")
    return step


def rescore_sop(sop_id: str) -> dict[str, Any]:
    """Rescore every open lead with the rules of `sop_id`'s first score step."""
    step = score_step_of(sop_id)
    return {"sop": sop_id, "step": step.id, "changed": rescore_open_leads(step)}


@flow(name="sopflow-rescore", persist_result=False)
def rescore(sop_id: str = "lead-qualification") -> dict[str, Any]:
    """Recompute score, grade and stage of every open lead with the SOP's score rules, in the database."""
    redact_everywhere()
    outcome = rescore_sop(sop_id)
    get_run_logger().info("Rescored open leads with %s/%s: %d changed.", sop_id, outcome["step"], outcome["changed"])
    return outcome
