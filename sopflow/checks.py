"""Whole-SOP checks the schema cannot express: ids, roles, templates, conditions, jumps, cycles.

They run on whatever of the file passed the schema (a `Draft`), so one pass reports schema
errors and these together; a part that did not parse is left to its schema error.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping
from typing import Any
from dataclasses import dataclass
from pathlib import Path

from sopflow import registry, yamlpos
from sopflow.conditions import ConditionError, parse_condition
from sopflow.errors import SopError, SopWarning, unknown
from sopflow.sla import overdue_problems
from sopflow.suggest import close_match, did_you_mean
from sopflow.leads import LEAD_CONTEXT_KEYS
from sopflow.schema import (END, LEAD_FIELDS, MEASURE_KINDS, PERCENT_KINDS, ApprovalStep, Conversion, EmailStep,
                            InputAverage, LeadStatus, Measure, MedianTimeToStep, Objective, Review, SlaAdherence, Sop,
                            Step, TaskStep, UpdateLeadStep, WebhookStep)
from sopflow.templates import check_template, printed_without_fallback, variables_used

Problem = tuple[yamlpos.Path_, str]

# What each step kind's result holds, as later steps read it: steps.<id>.<key>.
COMMON_RESULT_KEYS = ("status", "reason")  # every step; `reason` says why one was skipped
RESULT_KEYS: dict[str, tuple[str, ...]] = {
    "approval": ("decision", "approver", "notes", "asks"),  # plus the step's inputs
    "score": ("score", "grade", "stage", "groups", "breakdown"),  # see sopflow.scoring.score_lead
    "email": ("outbox_id", "template"),
    "update_lead": ("owner", "fields", "starts"),  # `status` is the lead's new status
    "wait": ("wake_at", "woke_at"),
    "webhook": ("delivered", "http_status", "error"),
    "task": (),  # the outputs the step declares; any key when it declares none
}
RESERVED_RESULT_KEYS = {*COMMON_RESULT_KEYS, *RESULT_KEYS["approval"], "feedback"}
DECISIONS = ("approve", "reject")
# Lead values that are None for some leads (nullable columns, and values derived from them).
NULLABLE_LEAD_KEYS = frozenset({"name", "company", "title", "employees", "industry", "source", "owner", "score",
                                "grade", "first_name", "stage"})
TEMPLATE_ROOTS = {"lead", "steps", "sop"}
SOP_KEYS = {"id", "name", "version"}
MEASURE_AT: yamlpos.Path_ = ("objective", "measure")
NUMERIC_INPUTS = ("number", "integer")


@dataclass(frozen=True)
class Draft:
    """What of an SOP passed the schema, for the whole-SOP checks: None where a part did not."""

    roles: Mapping[str, list[Any]] | None  # each role's roster: names, or {name, email}
    review: Review | None
    steps: tuple[Step | None, ...]  # each step of the file, None where it is invalid
    ids: tuple[str | None, ...]  # each step's id when it is a valid id, even in an invalid step
    partial: frozenset[int] = frozenset()  # steps that parsed only without some of their fields
    objective: Objective | None = None
    measure: Measure | None = None  # the objective's measure, when it passed the schema on its own
    unmeasured: bool = False  # the objective names no measure: its KPI cannot be computed
    notify: Mapping[str, str] | None = None  # role -> notification block slug, when it passed the schema

    @classmethod
    def of(cls, sop: Sop) -> Draft:
        measure = sop.objective.measure
        return cls(sop.roles, sop.review, tuple(sop.steps), tuple(step.id for step in sop.steps),
                   objective=sop.objective, measure=measure, unmeasured=measure is None, notify=sop.notify)

    @property
    def whole(self) -> bool:
        return all(self.steps) and not self.partial


def check(draft: Draft, path: Path, lines: dict[yamlpos.Path_, int]) -> tuple[list[SopError], list[SopError]]:
    """Every problem in `draft` (of file `path`) and every warning, each located at its file line, each once."""
    template_dir = path.parent / "templates"
    errors = {SopError(path, yamlpos.line_of(lines, at), yamlpos.dotted(at), reason): None
              for at, reason in (*_problems(draft, template_dir), *_measure_problems(draft))}
    warnings = {SopWarning(path, yamlpos.line_of(lines, at), yamlpos.dotted(at), reason): None
                for at, reason in (*_template_warnings(draft, template_dir), *_measure_warnings(draft))}
    return list(errors), list(warnings)


def step_outputs(step: Step) -> list[str] | None:
    """The keys later steps can read of `step`'s result (steps.<id>.<key>); None when any key may be there."""
    declared: list[str] = list(step.inputs) if isinstance(step, ApprovalStep) else []
    if isinstance(step, TaskStep):
        if step.outputs is None:
            return None
        declared = step.outputs
    return [*COMMON_RESULT_KEYS, *RESULT_KEYS[step.kind], *declared]


def _problems(draft: Draft, template_dir: Path) -> Iterator[Problem]:
    roles = sorted(draft.roles) if draft.roles is not None else None
    ids = [step_id for step_id in draft.ids if step_id]
    first_index: dict[str, int] = {}
    for index, step_id in enumerate(draft.ids):
        if step_id:
            first_index.setdefault(step_id, index)
    if draft.review is not None and roles is not None and draft.review.owner not in roles:
        yield ("review", "owner"), unknown("role", draft.review.owner, roles)
    for role in sorted(draft.notify or {}):
        if roles is not None and role not in roles:
            yield ("notify", role), unknown("role", role, roles)
    try:
        registered_tasks = registry.registered()
    except ValueError as exc:
        registered_tasks = {}
        if any(isinstance(step, TaskStep) for step in draft.steps):
            yield ("steps",), str(exc)
    for index, step_id in enumerate(draft.ids):
        if step_id and first_index[step_id] != index:
            yield ("steps", index, "id"), f"step id {step_id!r} is already used by steps.{first_index[step_id]}"
    for index, step in enumerate(draft.steps):
        if step is None:
            continue
        at = ("steps", index)
        earlier = _earlier(draft, index)
        if roles is not None and step.owner not in roles:
            yield at + ("owner",), unknown("role", step.owner, roles)
        if isinstance(step, UpdateLeadStep) and step.assign_to and roles is not None and step.assign_to not in roles:
            yield at + ("assign_to",), unknown("role", step.assign_to, roles)
        if isinstance(step, TaskStep) and step.function not in registered_tasks:
            yield at + ("function",), (f"task function {step.function!r} is not registered; "
                                       f"add {step.function}=module:function to SOPFLOW_TASKS")
        if isinstance(step, ApprovalStep):
            for name in sorted(set(step.inputs) & RESERVED_RESULT_KEYS):
                yield at + ("inputs", name), f"input name {name!r} is reserved; choose another name"
            yield from ((at + where, reason) for where, reason in overdue_problems(step, roles))
        if isinstance(step, EmailStep):
            reason = check_template(template_dir, step.template)
            if reason:
                yield at + ("template",), reason
            else:
                yield from _template_variable_problems(at + ("template",), template_dir, step.template, earlier)
        if isinstance(step, WebhookStep) and step.send != "lead":
            sent = step.send.removeprefix("steps.")
            if not step.send.startswith("steps.") or sent not in earlier:
                yield at + ("send",), f"send {step.send!r} must be `lead` or steps.<an earlier step id>"
        if step.when is not None:
            yield from _condition_problems(at + ("when",), step.when, earlier, ids)
        for key, target in _targets(step):
            if target != END and target not in first_index:
                yield at + (key,), unknown("step", target, [END, *ids])
    unique = len(first_index) == len(draft.steps)
    cycle = _find_cycle(draft.steps) if draft.whole and unique else None  # type: ignore[arg-type]
    if cycle:
        # Implicit edges only go forward, so some edge of the cycle is an explicit jump back.
        source, target = next((a, b) for a, b in zip(cycle, cycle[1:]) if first_index[b] <= first_index[a])
        index = first_index[source]
        key = "on_reject" if getattr(draft.steps[index], "on_reject", None) == target else "next"
        yield ("steps", index, key), f"steps loop back: {' -> '.join(cycle)}; a step may only jump forward"


def _earlier(draft: Draft, index: int) -> dict[str, Step | None]:
    """The steps before `index` by id, each None when what its result holds is not known."""
    earlier: dict[str, Step | None] = {}
    for i in range(index):
        step_id = draft.ids[i]
        if step_id and step_id not in earlier:
            earlier[step_id] = draft.steps[i] if i not in draft.partial else None
    return earlier


def _output_problem(uses: str, earlier: dict[str, Step | None], step_id: str, key: str) -> str | None:
    """Why `uses` (`condition uses steps.x.y`) reads nothing, when step `step_id` gives no `key`."""
    step = earlier.get(step_id)
    outputs = step_outputs(step) if step is not None else None
    if step is None or outputs is None or key in outputs:
        return None
    return f"{uses}, but {step.kind} step {step_id!r} gives no {key!r}{did_you_mean(key, outputs)}"


def _choices(earlier: dict[str, Step | None], name: tuple[str, ...]) -> tuple[str, ...] | None:
    """The only values `name` can have, when it is a choice: an approval's decision or choice input, lead.status."""
    if name == ("lead", "status"):
        return typing.get_args(LeadStatus)
    step = earlier.get(name[1]) if name[0] == "steps" else None
    if not isinstance(step, ApprovalStep):
        return None
    if name[2] == "decision":
        return DECISIONS
    spec = step.inputs.get(name[2])
    return tuple(spec.choices) if spec is not None and spec.choices else None


def _condition_problems(path: yamlpos.Path_, source: str, earlier: dict[str, Step | None],
                        ids: list[str]) -> Iterator[Problem]:
    try:
        condition = parse_condition(source)
    except ConditionError as exc:
        yield path, str(exc)
        return
    for name in sorted(condition.names):
        if name[0] == "lead" and name[1] not in LEAD_FIELDS:
            yield path, unknown("lead field", name[1], list(LEAD_FIELDS))
        elif name[0] == "steps" and name[1] not in earlier:
            where = "a later step" if name[1] in ids else "not a step"
            yield path, f"condition uses steps.{name[1]}, which is {where}; use an earlier step"
        elif name[0] == "steps":
            reason = _output_problem(f"condition uses {'.'.join(name)}", earlier, name[1], name[2])
            if reason:
                yield path, reason
    for name, values in condition.compared_values():
        choices = _choices(earlier, name)
        for value in values:
            if choices is not None and value is not None and value not in choices:
                yield path, (f"condition compares {'.'.join(name)} with {value!r}, which is not one of its choices: "
                             f"{', '.join(choices)}{close_match(str(value), choices)}")


def _template_variable_problems(path: yamlpos.Path_, template_dir: Path, name: str,
                                earlier: dict[str, Step | None]) -> Iterator[Problem]:
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
        elif used[0] == "steps" and len(used) > 2:
            reason = _output_problem(f"template {name} uses {shown!r}", earlier, used[1], used[2])
            if reason:
                yield path, reason


def _template_warnings(draft: Draft, template_dir: Path) -> Iterator[Problem]:
    """Lead values an email template prints that are empty for some leads, with no fallback given."""
    for index, step in enumerate(draft.steps):
        if not isinstance(step, EmailStep) or check_template(template_dir, step.template):
            continue
        for used in sorted(printed_without_fallback(template_dir, step.template)):
            if used[0] == "lead" and len(used) == 2 and used[1] in NULLABLE_LEAD_KEYS:
                shown = ".".join(used)
                yield ("steps", index, "template"), (
                    f"template {step.template} prints {shown!r}, which is empty for some leads; say what to print "
                    f'instead, e.g. {{{{ {shown} | default("...") }}}}')


def _measure_problems(draft: Draft) -> Iterator[Problem]:
    """What makes the objective's measure one sopflow cannot compute for this SOP."""
    measure = draft.measure
    if isinstance(measure, Conversion) and measure.from_status == measure.to_status:
        yield MEASURE_AT + ("to_status",), (f"from_status and to_status are both {measure.to_status!r}, but a "
                                            "conversion goes from one status to another; change one of them")
    if measure is not None and measure.kind in PERCENT_KINDS and draft.objective is not None:
        for name in ("baseline", "target"):
            value = getattr(draft.objective, name)
            if not 0 <= value <= 1:
                yield ("objective", name), (f"{measure.kind} is a percent measure, so the {name} is a share "
                                            f"between 0 and 1: write {value / 100:g} for {value:g}%")
    if isinstance(measure, (MedianTimeToStep, SlaAdherence, InputAverage)):
        yield from _measured_step_problems(draft, measure)


def _measured_step_problems(draft: Draft, measure: MedianTimeToStep | SlaAdherence | InputAverage) -> Iterator[Problem]:
    """The measure's step is a step of the SOP of the kind the measure reads, with what it reads."""
    ids = [step_id for step_id in draft.ids if step_id]
    if measure.step not in ids:
        yield MEASURE_AT + ("step",), (f"the measure's step {measure.step!r} is not a step of this SOP"
                                       f"{did_you_mean(measure.step, ids)}")
        return
    index = draft.ids.index(measure.step)
    step = draft.steps[index]
    if step is None or index in draft.partial or isinstance(measure, MedianTimeToStep):
        return  # any step has a time; an invalid one's own schema error says what is wrong with it
    if not isinstance(step, ApprovalStep):
        approvals = [s.id for s in draft.steps if isinstance(s, ApprovalStep)]
        yield MEASURE_AT + ("step",), (f"{measure.kind} measures an approval step, but step {step.id!r} is of kind "
                                       f"{step.kind}; {_listed('approval steps of this SOP', approvals)}")
    elif isinstance(measure, SlaAdherence) and step.due_within is None:
        yield MEASURE_AT + ("step",), (f"approval step {step.id!r} has no due_within, so it has no due time to "
                                       "measure answers against; add due_within to the step")
    elif isinstance(measure, InputAverage):
        numeric = [name for name, spec in step.inputs.items() if spec.type in NUMERIC_INPUTS]
        spec = step.inputs.get(measure.input)
        if spec is None:
            yield MEASURE_AT + ("input",), (f"approval step {step.id!r} records no input {measure.input!r}"
                                            f"{did_you_mean(measure.input, step.inputs)}")
        elif spec.type not in NUMERIC_INPUTS:
            yield MEASURE_AT + ("input",), (f"input {measure.input!r} of step {step.id!r} is {spec.type}, but "
                                            "input_average averages a number or integer input; "
                                            f"{_listed('its number inputs', numeric)}")


def _listed(what: str, names: list[str]) -> str:
    """`what: a, b`, the steps or inputs a measure may name, or `what: none`."""
    return f"{what}: {', '.join(names) or 'none'}"


def _measure_warnings(draft: Draft) -> Iterator[Problem]:
    if draft.unmeasured:
        yield ("objective",), ("the objective has no measure, so `sopflow report` cannot compute its KPI; add one "
                               "sopflow can compute, e.g. measure: {kind: runs_completed, per: month} (kinds: "
                               f"{', '.join(MEASURE_KINDS)})")


def _targets(step: Step) -> Iterator[tuple[str, str]]:
    if step.next is not None:
        yield "next", step.next
    if isinstance(step, ApprovalStep):
        yield "on_reject", step.on_reject


def _successors(steps: tuple[Step, ...], index: int) -> set[str]:
    step = steps[index]
    following = steps[index + 1].id if index + 1 < len(steps) else END
    found = {target for _, target in _targets(step)}
    if step.next is None or step.when is not None:
        found.add(following)
    return found - {END}


def _find_cycle(steps: tuple[Step, ...]) -> list[str] | None:
    index_of = {step.id: i for i, step in reversed(list(enumerate(steps)))}
    state: dict[str, str] = {}

    def visit(step_id: str, trail: list[str]) -> list[str] | None:
        state[step_id] = "open"
        for target in sorted(_successors(steps, index_of[step_id])):
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

    for step in steps:
        if step.id not in state:
            found = visit(step.id, [])
            if found:
                return found
    return None
