"""What an approver reads before answering: the lead's context as Markdown."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sopflow.schema import ApprovalStep


_ANSWER_KEYS = {"status", "decision", "approver", "notes", "asks"}


def _cell(value: Any) -> str:
    return str(value if value not in (None, "") else "—").replace("|", "\\|").replace("\n", " ")


def approval_description(
    step: ApprovalStep,
    context: dict[str, Any],
    roster: list[str],
    due_by: datetime | None,
    refusals: list[str],
) -> str:
    """Markdown for the resume form: what is asked, of whom, about which lead, by when."""
    lead = context["lead"]
    lines = [f"### {step.prompt}", "", f"**SOP:** {context['sop']['name']} (v{context['sop']['version']})", ""]
    lines += ["| Lead | |", "|---|---|"]
    for label, key in (("Name", "name"), ("Company", "company"), ("Title", "title"), ("Employees", "employees"),
                       ("Industry", "industry"), ("Source", "source"), ("Status", "status")):
        lines.append(f"| {label} | {_cell(lead.get(key))} |")
    grade = f" (grade {lead['grade']})" if lead.get("score") is not None else ""
    lines.append(f"| Score | {_cell(lead.get('score'))}{grade} |")
    breakdown = next((r["breakdown"] for r in context["steps"].values() if "breakdown" in r), None)
    if breakdown is not None:
        lines += ["", "| Score breakdown | Points |", "|---|---|"]
        lines += [f"| {_cell(item['rule'])} | {item['points']:+d} |" for item in breakdown] or ["| no rule matched | 0 |"]
    answers = [(step_id, r) for step_id, r in context["steps"].items() if "decision" in r]
    if answers:
        lines += ["", "| Earlier answers | Decision | By | Recorded |", "|---|---|---|---|"]
        for step_id, r in answers:
            recorded = ", ".join(f"{k}: {v}" for k, v in r.items() if k not in _ANSWER_KEYS) or "—"
            lines.append(f"| {step_id} | {r['decision']} | {_cell(r['approver'])} | {_cell(recorded)} |")
        lines += [f"\n> **{step_id}** notes: {_cell(r['notes'])}" for step_id, r in answers if r.get("notes")]
    if step.checklist:
        lines += ["", "**Check before answering:**", *[f"- [ ] {item}" for item in step.checklist]]
    due = due_by.strftime("%Y-%m-%d %H:%M UTC") if due_by else "no deadline"
    lines += ["", f"**Due by:** {due}", f"**Who may answer ({step.owner}):** {', '.join(roster)}"]
    for refusal in refusals:
        lines += ["", f"> Previous answer not accepted: {refusal}"]
    return "\n".join(lines)
