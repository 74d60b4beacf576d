"""What an approver reads before answering (the lead's context as Markdown), and the typed inputs they fill in."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import AfterValidator, Field, StringConstraints

from sopflow.schema import ApprovalStep, FormInput
from sopflow.suggest import did_you_mean
from sopflow.text import invisible_in


def _whole(value: float) -> float | int:
    """A number entered as 25000 stays 25000, not 25000.0; 12.5 stays 12.5."""
    return int(value) if value.is_integer() else value


Number = Annotated[float, AfterValidator(_whole)]  # still `type: number` in the form's JSON schema
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"  # YYYY-MM: a calendar month, e.g. an expected close month
Month = Annotated[str, StringConstraints(strip_whitespace=True, pattern=MONTH_PATTERN)]
INPUT_TYPES: dict[str, Any] = {"text": str, "number": Number, "integer": int, "yes_no": bool, "month": Month}
_KINDS = {"text": "text", "number": "a number", "integer": "a whole number", "yes_no": "yes or no",
          "month": "a month as YYYY-MM, e.g. 2027-03"}


def _bound(value: float | None) -> float | int | None:
    return None if value is None else _whole(value)


def input_fields(step: ApprovalStep) -> dict[str, Any]:
    """The step's inputs as pydantic field definitions (`create_model` keyword arguments)."""
    fields: dict[str, Any] = {}
    for name, spec in step.inputs.items():
        annotation = Literal[tuple(spec.choices)] if spec.choices else INPUT_TYPES[spec.type]
        options = {"title": spec.label, "ge": _bound(spec.minimum), "le": _bound(spec.maximum)}
        fields[name] = (annotation, Field(**options)) if spec.required else (annotation | None, Field(None, **options))
    return fields


def input_kind(spec: FormInput) -> str:
    """What an input takes, in words: "a number", "one of interested, needs_follow_up"."""
    return f"one of {', '.join(spec.choices)}" if spec.choices else _KINDS[spec.type]


def _reason(error: Any, spec: FormInput) -> str:
    given, kind = error.get("input"), error["type"]
    if kind == "missing":
        return "missing; it is required"
    if kind == "greater_than_equal":
        return f"{shown(given)} is below the minimum, {shown(spec.minimum)}"
    if kind == "less_than_equal":
        return f"{shown(given)} is above the maximum, {shown(spec.maximum)}"
    return f"{given!r} is not {input_kind(spec)}"


def check_inputs(step: ApprovalStep, given: dict[str, str]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Typed values of `given` (text as typed), and every problem at once as (input name, reason).

    Required inputs must be given; optional ones (`required: false`) may be left out.
    """
    problems = [(name, f"is not an input of this step{did_you_mean(name, step.inputs)}")
                for name in given if name not in step.inputs]
    model = pydantic.create_model("Inputs", **input_fields(step))
    try:
        values = model.model_validate({k: v for k, v in given.items() if k in step.inputs}).model_dump(
            exclude_unset=True)
    except pydantic.ValidationError as exc:
        values = {}
        problems += [(str(err["loc"][0]), _reason(err, step.inputs[str(err["loc"][0])])) for err in exc.errors()]
    return values, problems


MAX_FEEDBACK = 2000  # characters: a paragraph or two about one SOP or step
FEEDBACK_HELP = ("Feedback on this step of the SOP (optional): what is unclear, missing or slow. "
                 "Kept with an accepted answer only.")


def feedback_problem(text: str) -> str | None:
    """Why `text` cannot be stored as feedback on an SOP (empty, too long, control characters), or None."""
    if not text.strip():
        return "feedback is empty; say what is unclear, missing or slow"
    if len(text) > MAX_FEEDBACK:
        return f"feedback is {len(text)} characters, more than {MAX_FEEDBACK}; shorten it"
    where = invisible_in(text)
    return f"feedback contains a control or invisible character ({where}); remove it" if where else None


def shown(value: Any) -> str:
    """A recorded value as a person reads it: 25000 (never 25000.0), yes/no, — for nothing."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "—" if value in (None, "") else str(value)


_ANSWER_KEYS = {"status", "decision", "approver", "notes", "asks"}
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+!|~])")


def markdown_text(value: Any) -> str:
    """A value typed by a lead or a person, shown as text: Markdown in it does nothing."""
    return _MARKDOWN.sub(r"\\\1", str(value if value not in (None, "") else "—")).replace("\n", " ")


def _lead_line(lead: dict[str, Any]) -> str:
    who = f"**{markdown_text(lead.get('name'))}**, {markdown_text(lead.get('title'))} at **{markdown_text(lead.get('company'))}**"
    facts = [f"{markdown_text(lead.get('employees'))} employees", markdown_text(lead.get("industry")),
             f"source: {markdown_text(lead.get('source'))}", f"status: {markdown_text(lead.get('status'))}"]
    return f"{who} — {' · '.join(facts)}"


def approval_description(
    step: ApprovalStep,
    context: dict[str, Any],
    roster: Sequence[str],
    due_by: datetime | None,
    refusals: list[str],
    role: str | None = None,
    overdue: str | None = None,
) -> str:
    """Markdown for the resume form: what is asked, by when, of whom, about which lead and why.

    `role` names who may answer when it is more than the step's owner (`rep or manager`, once escalated);
    `overdue` says in a sentence what happens when nobody answers in time (`sopflow.sla.plan_words`).
    """
    lead, steps = context["lead"], context["steps"]
    due = due_by.strftime("%Y-%m-%d %H:%M UTC") if due_by else "no deadline"
    lines = [f"### {step.prompt}", "",
             f"**Due by:** {due} · **Who may answer ({role or step.owner}):** {', '.join(roster)}"]
    lines += ["", markdown_text(overdue)] if overdue else []
    lines += [f"\n> Previous answer not accepted: {markdown_text(refusal)}" for refusal in refusals]
    lines += ["", _lead_line(lead)]
    if lead.get("score") is not None:
        lines += ["", f"**Score:** {lead['score']} (grade {lead.get('grade')})"]
    breakdown = next((r["breakdown"] for r in steps.values() if "breakdown" in r), None)
    if breakdown is not None:
        lines += ["", "| Score breakdown | Points |", "|---|---|"]
        lines += [f"| {markdown_text(item['rule'])} | {item['points']:+d} |" for item in breakdown] or ["| no rule matched | 0 |"]
    answers = [(step_id, r) for step_id, r in steps.items() if "decision" in r]
    if answers:
        lines += ["", "| Earlier answers | Decision | By | Recorded |", "|---|---|---|---|"]
        for step_id, r in answers:
            recorded = ", ".join(f"{k}: {shown(v)}" for k, v in r.items() if k not in _ANSWER_KEYS) or "—"
            lines.append(f"| {step_id} | {r['decision']} | {markdown_text(r['approver'])} | {markdown_text(recorded)} |")
        lines += [f"\n> **{step_id}** notes: {markdown_text(r['notes'])}" for step_id, r in answers if r.get("notes")]
    if step.checklist:
        lines += ["", "**Check before answering:**", *[f"- {item}" for item in step.checklist]]
    lines += ["", f"SOP: {context['sop']['name']} (v{context['sop']['version']})"]
    return "\n".join(lines)
