"""An S&OP plan (sopflow.snop.plan_figures) for people: the months over capacity in words, the table, the chart,
the Markdown of the run's artifact and sign-off forms, and the sign-off in one sentence."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sopflow.charts import chart_markdown, chart_svg
from sopflow.forms import shown
from sopflow.markdown import cell, table
from sopflow.store.snop import ROLES

SHORT = {"hours": "h", "units": "units"}
Figures = Mapping[str, Any]
SignOffs = Mapping[str, Mapping[str, Any] | None]  # role -> sopflow.store.snop.signed(...)


def amount(value: float, unit: str) -> str:
    """`412 h`, `35.5 units`."""
    return f"{shown(round(value, 1))} {SHORT[unit]}"


def money(value: float | None) -> str:
    return "—" if value is None else f"{round(value):,}"


def over_words(figures: Figures) -> list[str]:
    """Each month over capacity in words: "2027-02: demand 412 h exceeds capacity 320 h by 92 h (29%)"."""
    unit, found = figures["unit"], []
    for row in figures["months"]:
        if row["over"]:
            share = f" ({row['gap'] / row['capacity']:.0%})" if row["capacity"] else ""
            found.append(f"{row['month']}: demand {amount(row['demand'], unit)} exceeds capacity "
                         f"{amount(row['capacity'], unit)} by {amount(row['gap'], unit)}{share}")
    return found


def months_over(figures: Figures) -> str:
    """"no month over capacity", "1 month over capacity", "2 months over capacity"."""
    count = len(figures["over"])
    return f"{count or 'no'} month{'' if count == 1 else 's'} over capacity"


def table_rows(figures: Figures) -> list[dict[str, Any]]:
    """Per month: weighted demand, capacity, gap (demand - capacity) and whether it is over; the table artifact."""
    short = SHORT[figures["unit"]]
    return [{"month": row["month"], f"weighted demand ({short})": row["demand"], f"capacity ({short})": row["capacity"],
             f"gap ({short})": row["gap"], "over capacity": "yes" if row["over"] else "no"}
            for row in figures["months"]]


def chart(figures: Figures) -> str:
    """Demand against capacity per month, as bars (an SVG)."""
    rows = figures["months"]
    return chart_svg(f"S&OP {figures['month']}: weighted demand vs capacity ({figures['unit']})",
                     [row["month"] for row in rows],
                     {"Weighted demand": [row["demand"] for row in rows],
                      "Capacity": [row["capacity"] for row in rows]},
                     kind="bar", unit=f" {SHORT[figures['unit']]}")


def plan_markdown(figures: Figures, with_chart: bool = True) -> str:
    """The plan as Markdown: months over capacity, the months' table, the chart, the pipeline by stage, what is not
    placed in a month, and how demand was computed."""
    unit, short, counts = figures["unit"], SHORT[figures["unit"]], figures["opportunities"]
    months = figures["months"]
    lines = [f"## S&OP {figures['month']}: demand vs capacity", ""]
    over = over_words(figures)
    lines += ["**Over capacity:**", "", *[f"- {words}" for words in over], ""] if over else [
        f"**No month is over capacity** ({months[0]['month']} to {months[-1]['month']}).", ""]
    lines += table(["Month", "Deals", "Weighted value (EUR)", f"Weighted demand ({short})", f"Capacity ({short})",
                    f"Gap ({short})", "Over capacity"],
                   [[r["month"], r["deals"], money(r["weighted_value"]), shown(r["demand"]), shown(r["capacity"]),
                     shown(r["gap"]), "**yes**" if r["over"] else "no"] for r in months])
    if with_chart:
        lines += [chart_markdown("Weighted demand vs capacity per month", chart(figures)), ""]
    lines += [f"Open opportunities: {counts['open']}; awaiting terms: {counts['awaiting_terms']}; placed in a month: "
              f"{counts['placed']}; without a close month or value: {counts['unplaced']}.", ""]
    if counts["slipped"]:
        lines += [f"{counts['slipped']} deal(s) whose close month has passed are counted in {months[0]['month']} "
                  f"({amount(figures['slipped']['demand'], unit)}).", ""]
    if counts["beyond_horizon"]:
        lines += [f"{counts['beyond_horizon']} deal(s) close after {months[-1]['month']}, beyond the horizon "
                  f"({amount(figures['beyond_horizon']['demand'], unit)}, not in the table).", ""]
    if figures["stages"]:
        lines += ["### Pipeline by stage", ""] + table(
            ["Stage (last step done)", "Weight", "Deals", "Value (EUR)", "Weighted value (EUR)"],
            [[s["stage"], shown(s["weight"]), s["deals"], money(s["value"]), money(s["weighted_value"])]
             for s in figures["stages"]])
    if figures["unplaced"]:
        lines += ["### Not placed in a month (listed, not counted)", ""] + table(
            ["Run", "Stage", "Reason", "Deal value (EUR)", "Weighted value (EUR)"],
            [[u["run_id"], u["stage"], u["reason"], money(u["deal_value"]), money(u["weighted_value"])]
             for u in figures["unplaced"]])
    per = figures["per_deal_value"]
    weights = ", ".join(f"{step} {shown(weight)}" for step, weight in figures["stage_weights"].items())
    lines += [f"Demand: each {money(per['value'])} EUR of weighted deal value needs {amount(per['needs'], unit)}; "
              f"weights by the step a run last completed: {cell(weights)}. Computed {figures['computed_at'][:16]} "
              f"UTC from capacity file {figures['capacity_hash'][:12]}."]
    return "\n".join(lines) + "\n"


def sign_off_words(month: str, signed: SignOffs, over: str) -> str:
    """The plan's sign-off in one sentence, e.g. "S&OP 2026-12 signed off by Maria Lopez (sales) and Omar Haddad
    (operations); 1 month over capacity"."""
    def who(decision: str) -> str:
        return " and ".join(f"{s['by']} ({role})" for role in ROLES if (s := signed.get(role)) and
                            s["decision"] == decision)

    waiting = [role for role in ROLES if not signed.get(role)]
    approved, changes = who("approve"), who("needs_changes")
    if waiting:
        head = f"S&OP {month} waits for {' and '.join(waiting)} sign-off" + (f"; approved by {approved}" if approved
                                                                             else "")
        head += f"; changes asked by {changes}" if changes else ""
    elif changes:
        head = f"S&OP {month} needs changes, asked by {changes}" + (f"; approved by {approved}" if approved else "")
    else:
        head = f"S&OP {month} signed off by {approved}"
    return f"{head}; {over}"
