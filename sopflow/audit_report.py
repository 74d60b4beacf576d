"""An audit as people read it: the summary in Markdown, the findings as table rows, each KPI's trend as a chart."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sopflow.audit import KINDS, AuditResult
from sopflow.charts import chart_markdown, chart_svg
from sopflow.forms import markdown_text
from sopflow.kpi import amount
from sopflow.store.sla import ActionTaken


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%".replace(".0%", "%")


def overall(result: AuditResult) -> float | None:
    """The share of audited runs without findings, over every SOP."""
    audited = sum(row["audited"] for row in result.adherence.get("sop", {}).values())
    clean = sum(row["clean"] for row in result.adherence.get("sop", {}).values())
    return clean / audited if audited else None


def headline(result: AuditResult) -> str:
    """The audit in one sentence, for the run's state message and the terminal."""
    scope = result.sop_id or "every SOP"
    return (f"Audited {result.runs} run(s) of {scope} from {result.since:%Y-%m-%d %H:%M} to "
            f"{result.until:%Y-%m-%d %H:%M} UTC: {len(result.findings)} finding(s), adherence "
            f"{percent(overall(result))}")


def finding_rows(result: AuditResult, flow_runs: dict[str, str | None]) -> list[dict[str, Any]]:
    """One row per finding (the table artifact and `sopflow audit`), with its run's flow run id from `flow_runs`:
    no lead's personal data, ids only."""
    return [{"finding": KINDS[f.kind], "kind": f.kind, "sop": f.sop_id, "version": f.sop_version,
             "run": f.sop_run_id, "flow_run": flow_runs.get(f.sop_run_id or ""), "step": f.step_id,
             "person": f.person, "evidence": f.evidence,
             "when": f"{f.occurred_at:%Y-%m-%d %H:%M}" if f.occurred_at else None}
            for f in result.findings]


def _rates(title: str, label: str, rows: dict[str, dict[str, Any]], verified: bool = False) -> list[str]:
    if not rows:
        return []
    extra = " Verified |" if verified else ""
    lines = [f"### {title}", "", f"| {label} | Audited | Clean | Adherence |{extra}",
             "|---|---:|---:|---:|" + ("---:|" if verified else "")]
    lines += [f"| {markdown_text(name)} | {row['audited']} | {row['clean']} | {percent(row['rate'])} |"
              + (f" {row.get('verified', 0)} of {row['audited']} |" if verified else "") for name, row in rows.items()]
    return [*lines, ""]


def _action_words(action: ActionTaken) -> str:
    detail = action.detail
    if action.action == "decide":
        return f"decided {detail.get('decision')}: {detail.get('reason')}"
    people = ", ".join(detail.get("people", []))
    return f"escalated to {detail.get('to')} ({people})" if action.action == "escalate" else f"reminded {people}"


def _actions(result: AuditResult) -> list[str]:
    if not result.sla_actions:
        return ["### SLA actions", "", "No overdue action (remind, escalate, decide) was taken in the window.", ""]
    lines = ["### SLA actions", "", "| Run | Step | Ask | Action | Due | Taken |", "|---|---|---:|---|---|---|"]
    lines += [f"| {a.sop_run_id} | {a.step_id} | {a.ask + 1} | {markdown_text(_action_words(a))} | "
              f"{a.due_at:%Y-%m-%d %H:%M} | {a.taken_at:%Y-%m-%d %H:%M} |" for a in result.sla_actions]
    return [*lines, ""]


def summary_markdown(result: AuditResult, kpis: list[dict[str, Any]]) -> str:
    """The audit's Markdown artifact: headline, findings by kind, adherence per SOP, step and person, the SLA
    actions taken, KPIs."""
    counts = Counter(f.kind for f in result.findings)
    lines = ["## Audit", "", headline(result) + ".", "", "### Findings by kind", "", "| Finding | Count |",
             "|---|---:|", *(f"| {words} | {counts[kind]} |" for kind, words in KINDS.items()), ""]
    lines += _rates("Adherence per SOP", "SOP", result.adherence.get("sop", {}))
    lines += _rates("Adherence per step", "SOP/step", result.adherence.get("step", {}))
    lines += _rates("Adherence per person (approvals answered; verified: through the person's own signed link, "
                    "the others hold a name as typed)", "Person", result.adherence.get("person", {}), verified=True)
    lines += _actions(result)
    if kpis:
        lines += ["### KPIs", "", "| SOP | Metric | Value | Target | Deadline | Verdict |", "|---|---|---:|---:|---|---|"]
        lines += [f"| {row['sop']} | {markdown_text(row['metric'])} | {amount(row['value'], row['unit'])} | "
                  f"{amount(row['target'], row['unit'])} | {row['deadline']} | {markdown_text(row['verdict'])} |"
                  for row in kpis]
        lines += ["", "Each KPI's trend chart is the artifact `kpi-<sop>` of this run."]
    return "\n".join(lines)


def kpi_markdown(row: dict[str, Any]) -> str:
    """The KPI's verdict and its trend (the last 12 periods) drawn against its baseline and target."""
    unit = "%" if row["unit"] == "%" else ""
    svg = chart_svg(f"{row['sop']}: {row['metric']}", [point["period"] for point in row["trend"]],
                    {row["metric"]: [point["value"] for point in row["trend"]]}, unit=unit,
                    references={"target": row["target"], "baseline": row["baseline"]})
    return "\n".join([f"## KPI: {markdown_text(row['metric'])} ({row['sop']})", "",
                      f"{markdown_text(row['verdict'])}. Target {amount(row['target'], row['unit'])} by "
                      f"{row['deadline']}, baseline {amount(row['baseline'], row['unit'])}.", "",
                      chart_markdown(f"{row['metric']}, last {len(row['trend'])} periods", svg)])
