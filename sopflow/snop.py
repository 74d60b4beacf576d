"""S&OP figures: the pipeline's demand per month against the capacity operations declare (sopflow.capacity).

Demand comes from the open opportunities: runs of the negotiation SOP that have not ended (pending, running or
waiting) whose lead is at status `opportunity`. A run counts once its terms step (`deal_terms`) recorded the deal:
its `deal_value`, weighted by the run's stage, lands in its `expected_close` month. The stage is the last step the
run completed; its weight is the capacity file's weight for that step, else for the nearest earlier step of the SOP
that has one (`deal_terms` always has). Weighted value converts into demand by `per_deal_value`.

Months are the plan's own and the `horizon - 1` after it. A deal whose close month has passed still counts, in the
plan's first month (slipped); one after the horizon is counted apart; one without a usable close month (not given,
or not YYYY-MM) or deal value is listed by run, never dropped. A rejected terms step (the deal is lost) counts nothing.
One SELECT reads every open opportunity with its terms and its last completed step.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from sopflow.capacity import CLOSE_INPUT, NEGOTIATION_SOP, TERMS_STEP, VALUE_INPUT, LoadedCapacity
from sopflow.forms import MONTH_PATTERN
from sopflow.store.models import Lead, SopRun, StepRecord

OPEN_STATES = ("pending", "running", "waiting")
_MONTH = re.compile(MONTH_PATTERN)


def month_of(moment: datetime | date) -> str:
    """The month ('YYYY-MM', UTC) holding `moment`."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(timezone.utc)
    return f"{moment.year:04d}-{moment.month:02d}"


def parse_month(text: Any) -> str | None:
    """`text` when it is a month as YYYY-MM (surrounding spaces ignored), else None."""
    return text.strip() if isinstance(text, str) and _MONTH.match(text.strip()) else None


def months_from(first: str, count: int) -> list[str]:
    """`count` months from `first` on."""
    year, month = int(first[:4]), int(first[5:])
    index = year * 12 + month - 1
    return [f"{(index + i) // 12:04d}-{(index + i) % 12 + 1:02d}" for i in range(count)]


def open_opportunities(session: Session) -> list[tuple[str, dict[str, Any] | None, str | None]]:
    """(run id, its terms step's result or None, its last completed step or None) of every open opportunity."""
    terms, last = aliased(StepRecord), aliased(StepRecord)
    last_ids = (select(StepRecord.sop_run_id, func.max(StepRecord.id).label("last_id"))
                .join(SopRun, SopRun.id == StepRecord.sop_run_id)
                .where(SopRun.sop_id == NEGOTIATION_SOP, SopRun.state.in_(OPEN_STATES),
                       StepRecord.status == "completed")
                .group_by(StepRecord.sop_run_id).subquery())
    query = (select(SopRun.id, terms.result, last.step_id)
             .join(Lead, Lead.id == SopRun.lead_id)
             .outerjoin(terms, and_(terms.sop_run_id == SopRun.id, terms.step_id == TERMS_STEP,
                                    terms.status == "completed"))
             .outerjoin(last_ids, last_ids.c.sop_run_id == SopRun.id)
             .outerjoin(last, last.id == last_ids.c.last_id)
             .where(SopRun.sop_id == NEGOTIATION_SOP, SopRun.state.in_(OPEN_STATES), Lead.status == "opportunity")
             .order_by(SopRun.created_at, SopRun.id))
    return [(run_id, result, step_id) for run_id, result, step_id in session.execute(query)]


def stage_weight(stage: str, weights: dict[str, float], steps: Sequence[str]) -> float:
    """The weight of a run whose last completed step is `stage`: its own, else the nearest earlier step's."""
    if stage in weights:
        return weights[stage]
    earlier = steps[:steps.index(stage)] if stage in steps else []
    return next((weights[step] for step in reversed(earlier) if step in weights), weights[TERMS_STEP])


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _sum(rows: Sequence[dict[str, Any]], key: str) -> float:
    return round(sum(row[key] for row in rows), 2)


def plan_figures(session: Session, capacity: LoadedCapacity, steps: Sequence[str], month: str,
                 now: datetime | None = None) -> dict[str, Any]:
    """The S&OP figures of `month` from the open opportunities, as plain JSON data (see the module docstring).

    `steps`: the negotiation SOP's step ids in order (for stage weights). Keys: month, unit, computed_at,
    capacity_hash, per_deal_value, stage_weights, sign_off (the rosters), months (per month: deals,
    weighted_value, demand, capacity, gap = demand - capacity, over), over (the months over capacity),
    stages (per stage: weight, deals, value, weighted_value), opportunities (counts: open, awaiting_terms,
    placed, slipped, beyond_horizon, unplaced), slipped and beyond_horizon (deals, weighted_value, demand),
    unplaced (per run: run_id, stage, reason, deal_value, weighted_value).
    """
    plan = capacity.plan
    per = plan.demand.per_deal_value
    window = months_from(month, plan.horizon)
    deals: list[dict[str, Any]] = []
    awaiting = 0
    for run_id, terms, stage in open_opportunities(session):
        if terms is None:
            awaiting += 1
            continue
        if terms.get("decision") == "reject":  # lost: the run is on its way to closed_lost
            continue
        stage = stage or TERMS_STEP
        weight = stage_weight(stage, plan.stage_weights, steps)
        value = _number(terms.get(VALUE_INPUT))
        weighted = round((value or 0) * weight, 2)
        deals.append({"run_id": run_id, "stage": stage, "weight": weight, "deal_value": value,
                      "weighted_value": weighted, "demand": round(weighted / per.value * per.needs, 2),
                      "close": parse_month(terms.get(CLOSE_INPUT)), "no_value": value is None})
    placed = [d for d in deals if d["close"] and not d["no_value"]]
    slipped = [d for d in placed if d["close"] < window[0]]
    beyond = [d for d in placed if d["close"] > window[-1]]
    unplaced = [d for d in deals if not (d["close"] and not d["no_value"])]
    months = []
    for label in window:
        here = [d for d in placed if d["close"] == label or (label == window[0] and d["close"] < label)]
        demand, cap = _sum(here, "demand"), plan.capacity_of(label)
        months.append({"month": label, "deals": len(here), "weighted_value": _sum(here, "weighted_value"),
                       "demand": demand, "capacity": cap, "gap": round(demand - cap, 2), "over": demand > cap})
    stages = [{"stage": stage, "weight": stage_weight(stage, plan.stage_weights, steps),
               "deals": sum(1 for d in deals if d["stage"] == stage),
               "value": _sum([d for d in deals if d["stage"] == stage and not d["no_value"]], "deal_value"),
               "weighted_value": _sum([d for d in deals if d["stage"] == stage], "weighted_value")}
              for stage in [*steps, *sorted({d["stage"] for d in deals} - set(steps))]
              if any(d["stage"] == stage for d in deals)]
    return {
        "month": month, "unit": plan.unit, "computed_at": (now or datetime.now(timezone.utc)).isoformat(),
        "capacity_hash": capacity.content_hash, "per_deal_value": per.model_dump(),
        "stage_weights": dict(plan.stage_weights), "sign_off": plan.sign_off.model_dump(),
        "months": months, "over": [m["month"] for m in months if m["over"]], "stages": stages,
        "opportunities": {"open": awaiting + len(deals), "awaiting_terms": awaiting, "placed": len(placed),
                          "slipped": len(slipped), "beyond_horizon": len(beyond), "unplaced": len(unplaced)},
        "slipped": _totals(slipped), "beyond_horizon": _totals(beyond),
        "unplaced": [{"run_id": d["run_id"], "stage": d["stage"],
                      "reason": "no deal value" if d["no_value"] else "no close month",
                      "deal_value": d["deal_value"], "weighted_value": d["weighted_value"]} for d in unplaced],
    }


def _totals(deals: Sequence[dict[str, Any]]) -> dict[str, Any]:
    return {"deals": len(deals), "weighted_value": _sum(deals, "weighted_value"), "demand": _sum(deals, "demand")}
