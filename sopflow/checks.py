"""Whole-SOP checks the schema cannot express: ids, roles, templates, conditions, jumps, cycles."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from sopflow import registry, yamlpos
from sopflow.conditions import ConditionError, parse_condition
from sopflow.errors import SopError
from sopflow.loader import LoadedSop
from sopflow.schema import END, LEAD_FIELDS, ApprovalStep, EmailStep, TaskStep, UpdateLeadStep, WebhookStep
from sopflow.leads import LEAD_CONTEXT_KEYS
from sopflow.templates import check_template, variables_used

Problem = tuple[yamlpos.Path_, str]
RESERVED_RESULT_KEYS = {"decision", "approver", "notes", "asks", "status", "reason"}


def check_sop(loaded: LoadedSop) -> list[SopError]:
    """Every problem in a schema-valid SOP, each located at its file line."""
    return [
        SopError(loaded.path, yamlpos.line_of(loaded.lines, path), yamlpos.dotted(path), reason)
        for path, reason in _problems(loaded)
    ]


def _problems(loaded: LoadedSop) -> Iterator[Problem]:
    sop = loaded.sop
    roles = sorted(sop.roles)
    ids = [step.id for step in sop.steps]
    first_index: dict[str, int] = {}
    for index, step in enumerate(sop.steps):
        first_index.setdefault(step.id, index)
    if sop.review.owner not in sop.roles:
        yield ("review", "owner"), _unknown("role", sop.review.owner, roles)
    template_dir = loaded.path.parent / "templates"
    try:
        registered_tasks = registry.registered()
    except ValueError as exc:
        registered_tasks = {}
        if any(isinstance(step, TaskStep) for step in sop.steps):
            yield ("steps",), str(exc)
    for index, step in enumerate(sop.steps):
        at = ("steps", index)
        if first_index[step.id] != index:
            yield at + ("id",), f"step id {step.id!r} is already used by steps.{first_index[step.id]}"
        if step.owner not in sop.roles:
            yield at + ("owner",), _unknown("role", step.owner, roles)
        if isinstance(step, UpdateLeadStep) and step.assign_to and step.assign_to not in sop.roles:
            yield at + ("assign_to",), _unknown("role", step.assign_to, roles)
        if isinstance(step, TaskStep) and step.function not in registered_tasks:
            yield at + ("function",), (f"task function {step.function!r} is not registered; "
                                       f"add {step.function}=module:function to SOPFLOW_TASKS")
        if isinstance(step, ApprovalStep):
            for name in sorted(set(step.inputs) & RESERVED_RESULT_KEYS):
                yield at + ("inputs", name), f"input name {name!r} is reserved; choose another name"
        if isinstance(step, EmailStep):
            reason = check_template(template_dir, step.template)
            if reason:
                yield at + ("template",), reason
            else:
                yield from _template_variable_problems(at + ("template",), template_dir, step.template, ids[:index])
        if isinstance(step, WebhookStep) and step.send != "lead":
            sent = step.send.removeprefix("steps.")
            if not step.send.startswith("steps.") or sent not in ids[:index]:
                yield at + ("send",), f"send {step.send!r} must be `lead` or steps.<an earlier step id>"
        if step.when is not None:
            yield from _condition_problems(at + ("when",), step.when, ids[:index], ids)
        for key, target in _targets(step):
            if target != END and target not in first_index:
                yield at + (key,), _unknown("step", target, [END, *ids])
    cycle = _find_cycle(sop) if len(first_index) == len(sop.steps) else None  # ids must be unique first
    if cycle:
        # Implicit edges only go forward, so some edge of the cycle is an explicit jump back.
        source, target = next((a, b) for a, b in zip(cycle, cycle[1:]) if first_index[b] <= first_index[a])
        index = first_index[source]
        key = "on_reject" if getattr(sop.steps[index], "on_reject", None) == target else "next"
        yield ("steps", index, key), f"steps loop back: {' -> '.join(cycle)}; a step may only jump forward"


def _condition_problems(path: yamlpos.Path_, source: str, earlier: list[str], ids: list[str]) -> Iterator[Problem]:
    try:
        condition = parse_condition(source)
    except ConditionError as exc:
        yield path, str(exc)
        return
    for name in sorted(condition.names):
        if name[0] == "lead" and name[1] not in LEAD_FIELDS:
            yield path, _unknown("lead field", name[1], list(LEAD_FIELDS))
        elif name[0] == "steps" and name[1] not in earlier:
            where = "a later step" if name[1] in ids else "not a step"
            yield path, f"condition uses steps.{name[1]}, which is {where}; use an earlier step"


TEMPLATE_ROOTS = {"lead", "steps", "sop"}
SOP_KEYS = {"id", "name", "version"}


def _template_variable_problems(path: yamlpos.Path_, template_dir, name: str, earlier: list[str]) -> Iterator[Problem]:
    """Every variable the template reads that this step does not provide."""
    for used in sorted(variables_used(template_dir, name)):
        shown = ".".join(used)
        if used[0] not in TEMPLATE_ROOTS:
            yield path, f"template {name} uses {shown!r}, which an email step does not provide (it gives lead, steps, sop)"
        elif used[0] == "lead" and len(used) > 1 and used[1] not in LEAD_CONTEXT_KEYS:
            yield path, f"template {name} uses {shown!r}, but a lead has no {used[1]!r}"
        elif used[0] == "sop" and len(used) > 1 and used[1] not in SOP_KEYS:
            yield path, f"template {name} uses {shown!r}; sop gives {', '.join(sorted(SOP_KEYS))}"
        elif used[0] == "steps" and len(used) > 1 and used[1] not in earlier:
            yield path, f"template {name} uses {shown!r}, but {used[1]!r} is not an earlier step"


def _targets(step: object) -> Iterator[tuple[str, str]]:
    if step.next is not None:  # type: ignore[attr-defined]
        yield "next", step.next  # type: ignore[attr-defined]
    if isinstance(step, ApprovalStep):
        yield "on_reject", step.on_reject


def _successors(sop, index: int) -> set[str]:
    step = sop.steps[index]
    following = sop.steps[index + 1].id if index + 1 < len(sop.steps) else END
    found = {target for _, target in _targets(step)}
    if step.next is None or step.when is not None:
        found.add(following)
    return found - {END}


def _find_cycle(sop) -> list[str] | None:
    index_of = {step.id: i for i, step in reversed(list(enumerate(sop.steps)))}
    state: dict[str, str] = {}

    def visit(step_id: str, trail: list[str]) -> list[str] | None:
        state[step_id] = "open"
        for target in sorted(_successors(sop, index_of[step_id])):
            if target not in index_of:
                continue
            if state.get(target) == "open":
                return trail[trail.index(target):] + [step_id, target] if target in trail else [step_id, target]
            if target not in state:
                found = visit(target, trail + [step_id])
                if found:
                    return found
        state[step_id] = "done"
        return None

    for step in sop.steps:
        if step.id not in state:
            found = visit(step.id, [])
            if found:
                return found
    return None


def _unknown(what: str, name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else f"; known: {', '.join(choices)}"
    return f"{what} {name!r} is not defined{hint}"
