"""What an approver reads before answering: the lead's context as Markdown."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sopflow.schema import ApprovalStep


_ANSWER_KEYS = {"status", "decision", "approver", "notes", "asks"}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def _text(value: Any) -> str:
    """A value typed by a lead or a person, shown as text: Markdown in it does nothing."""
    return _MARKDOWN.sub(r"\\\1", str(value if value not in (None, "") else "—")).replace("\n", " ")


def _lead_line(lead: dict[str, Any]) -> str:
    who = f"**{_text(lead.get('name'))}**, {_text(lead.get('title'))} at **{_text(lead.get('company'))}**"
    facts = [f"{_text(lead.get('employees'))} employees", _text(lead.get("industry")),
             f"source: {_text(lead.get('source'))}", f"status: {_text(lead.get('status'))}"]
    return f"{who} — {' · '.join(facts)}"


def approval_description(
    step: ApprovalStep,
    context: dict[str, Any],
    roster: list[str],
    due_by: datetime | None,
    refusals: list[str],
) -> str:
    """Markdown for the resume form: what is asked, by when, of whom, about which lead and why."""
    lead, steps = context["lead"], context["steps"]
    due = due_by.strftime("%Y-%m-%d %H:%M UTC") if due_by else "no deadline"
    lines = [f"### {step.prompt}", "", f"**Due by:** {due} · **Who may answer ({step.owner}):** {', '.join(roster)}"]
    lines += [f"\n> Previous answer not accepted: {_text(refusal)}" for refusal in refusals]
    lines += ["", _lead_line(lead)]
    if lead.get("score") is not None:
        lines += ["", f"**Score:** {lead['score']} (grade {lead.get('grade')})"]
    breakdown = next((r["breakdown"] for r in steps.values() if "breakdown" in r), None)
    if breakdown is not None:
        lines += ["", "| Score breakdown | Points |", "|---|---|"]
        lines += [f"| {_text(item['rule'])} | {item['points']:+d} |" for item in breakdown] or ["| no rule matched | 0 |"]
    answers = [(step_id, r) for step_id, r in steps.items() if "decision" in r]
    if answers:
        lines += ["", "| Earlier answers | Decision | By | Recorded |", "|---|---|---|---|"]
        for step_id, r in answers:
            recorded = ", ".join(f"{k}: {v}" for k, v in r.items() if k not in _ANSWER_KEYS) or "—"
            lines.append(f"| {step_id} | {r['decision']} | {_text(r['approver'])} | {_text(recorded)} |")
        lines += [f"\n> **{step_id}** notes: {_text(r['notes'])}" for step_id, r in answers if r.get("notes")]
    if step.checklist:
        lines += ["", "**Check before answering:**", *[f"- {item}" for item in step.checklist]]
    lines += ["", f"SOP: {context['sop']['name']} (v{context['sop']['version']})"]
    return "\n".join(lines)
