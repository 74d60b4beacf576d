"""`sopflow snop`: a month's S&OP plan (weighted demand, capacity and gap per month) and its sign-off."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

import typer
from rich.text import Text

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.output import Json, fail, print_json, show, table


def _plan(month: str) -> dict[str, Any]:
    """The month's plan as stored (figures frozen when its run opened), else computed now from the store and the
    capacity file (SopInvalid when the file is not valid)."""
    from sopflow.capacity import load_current
    from sopflow.snop import plan_figures
    from sopflow.snop_report import months_over, over_words, sign_off_words
    from sopflow.store import snop as plans
    from sopflow.store.db import transaction

    with transaction() as session:
        plan = plans.plan_for(session, month)
        state, run_id = (plan.state, plan.flow_run_id) if plan else ("not opened", None)
        stored = plan.figures if plan else None
        signed = {role: plans.signed(plan, role) if plan else None for role in plans.ROLES}
    if stored is None:
        capacity, negotiation = load_current(settings.sop_dir())
        with transaction() as session:
            figures = plan_figures(session, capacity, [step.id for step in negotiation.sop.steps], month)
    else:
        figures = stored
    words = sign_off_words(month, signed, months_over(figures)) if stored is not None else (
        f"S&OP {month} has no plan run with figures yet: computed now, the month's run freezes them; "
        f"{months_over(figures)}")
    return {**figures, "state": state, "flow_run_id": run_id, "signed": signed, "summary": words,
            "over_words": over_words(figures)}


@app.command()
def snop(
    month: Annotated[str | None, typer.Option(help="The plan's month, YYYY-MM (default: this month, UTC).",
                                              show_default=False)] = None,
    as_json: Json = False,
) -> None:
    """Show a month's S&OP plan: weighted demand, capacity and gap per month, the months over capacity, and who
    signed it off. Before the month's run opens the plan, its figures are computed now."""
    from sopflow.forms import shown
    from sopflow.snop import month_of, parse_month
    from sopflow.snop_report import SHORT

    label = month if month is not None else month_of(datetime.now(timezone.utc))
    if parse_month(label) != label:
        fail("snop", f"--month {label!r} is not a month; give it as YYYY-MM, e.g. 2026-12", code=2)
    plan = _plan(label)
    if as_json:
        print_json(plan)
        return
    short = SHORT[plan["unit"]]
    columns = [("Month", lambda r: r["month"]), ("Deals", lambda r: r["deals"]),
               ("Weighted value (EUR)", lambda r: f"{round(r['weighted_value']):,}"),
               (f"Demand ({short})", lambda r: shown(round(r["demand"], 1))),
               (f"Capacity ({short})", lambda r: shown(round(r["capacity"], 1))),
               (f"Gap ({short})", lambda r: shown(round(r["gap"], 1))),
               ("Over", lambda r: "yes" if r["over"] else "no")]
    counts = plan["opportunities"]
    notes = [plan["summary"], *plan["over_words"],
             f"Open opportunities: {counts['open']} (awaiting terms {counts['awaiting_terms']}, placed "
             f"{counts['placed']}, slipped into {label} {counts['slipped']}, beyond the horizon "
             f"{counts['beyond_horizon']}, without a close month or value {counts['unplaced']})"]
    notes += [f"Not placed in a month: run {u['run_id']} at {u['stage']}: {u['reason']}" for u in plan["unplaced"]]
    show(table(plan["months"], columns, f"S&OP {label} ({plan['state']})"), *(Text(line) for line in notes))
