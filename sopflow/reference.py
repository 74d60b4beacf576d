"""docs/sop-format.md: the SOP file reference, generated from the pydantic models in sopflow/schema.py.

Every field of the SOP and of each step kind with its type, whether it is required (or its
default) and its description; a YAML example per step kind (tests load each one through the
loader); what each step gives later steps; and the rules `sopflow validate` applies, quoting
the limits from the modules that enforce them. `sopflow schema --write` rewrites the file
(`sopflow.schema_file.write_all`).
"""

from __future__ import annotations

import datetime as dt
import types
import typing
from collections.abc import Collection, Sequence
from typing import Annotated, Any, Literal, Union

import annotated_types
from pydantic import BaseModel, StringConstraints
from pydantic.fields import FieldInfo

from sopflow import capacity, checks, conditions, loader, schema, yamlpos
from sopflow.leads import LEAD_CONTEXT_KEYS
from sopflow.settings import PROJECT_ROOT

DOC_FILE = PROJECT_ROOT / "docs" / "sop-format.md"

# The head of every example: a whole SOP without its steps. Each kind's example below is its `steps:`.
EXAMPLE_HEAD = """\
id: lead-qualification
name: Lead qualification and needs assessment
version: 1
owner: Dana Reyes (Sales Operations)
objective:
  statement: Increase qualified leads by 20% within the next quarter
  metric: qualified leads per quarter
  baseline: 120
  target: 144
  deadline: 2027-03-31
  measure: {kind: leads_reaching_status, status: qualified, per: quarter}
roles:
  rep: [Alex Kim, {name: Priya Shah, email: priya@example.com}]
  manager: [{name: Maria Lopez, email: maria@example.com}]
  ops: [Dana Reyes]
notify: {rep: slack-webhook/sales-reps}
trigger: {event: new_lead}
review: {every: 12w, owner: ops}
compliance: [Leads who opt out are not emailed.]
steps:
"""

EXAMPLES: dict[str, str] = {
    "score": """\
  - id: score_lead
    kind: score
    owner: ops
    rules:
      - {label: Senior title, field: title, contains_any: [vp, director, head], points: 30}
      - {label: Mid-market, field: employees, at_least: 200, points: 25}
      - {label: Replied lately, field: replied, at_least: 1, points: 20, group: engagement}
      - {label: Student, field: title, contains_any: [student, intern], points: -30, group: negative}
    caps: {fit: 60, engagement: 40}
    grades: {A: 80, B: 60, C: 40}
    scores_lead: true   # the lead's score of record
  - id: send_to_nurture
    kind: update_lead
    owner: ops
    when: lead.score < 50 or steps.score_lead.grade == "D"
    status: nurture
    next: end
""",
    "email": """\
  - id: follow_up_email
    kind: email
    owner: rep
    when: lead.score >= 50
    template: qualified_follow_up
""",
    "approval": """\
  - id: deal_terms
    kind: approval
    owner: manager
    prompt: Record the negotiated terms
    checklist: [Budget confirmed, Decision maker identified]
    inputs:
      deal_value: {label: Deal value (EUR per year), type: number, minimum: 0}
      tier: {label: Tier, type: choice, choices: [standard, premium]}
    due_within: 2d
    overdue:
      - {action: remind, after: 4h}
      - {action: escalate, to: ops, after: 1d}
    on_reject: lost
  - id: premium_onboarding
    kind: update_lead
    owner: rep
    when: steps.deal_terms.tier == "premium" and steps.deal_terms.deal_value > 50000
    fields: {onboarding: premium}
  - id: lost
    kind: update_lead
    owner: rep
    when: steps.deal_terms.decision == "reject"
    status: closed_lost
""",
    "update_lead": """\
  - id: mark_qualified
    kind: update_lead
    owner: rep
    status: qualified
    assign_to: rep
    fields: {stage: sql}
""",
    "wait": """\
  - id: wait_two_weeks
    kind: wait
    owner: ops
    duration: 14d
""",
    "webhook": """\
  - id: notify_sales_channel
    kind: webhook
    owner: ops
    url: env:SALES_CHANNEL_WEBHOOK
    auth: secret:sales-channel-token
    send: lead
""",
    "task": """\
  - id: enrich
    kind: task
    owner: ops
    function: enrich_company
    params: {provider: registry}
    outputs: [revenue, country]
  - id: route_to_emea
    kind: update_lead
    owner: ops
    when: steps.enrich.country in ["DE", "FR", "NL"]
    assign_to: rep
""",
}
EXAMPLE_TASKS = "enrich_company=acme_sales.enrich:run"  # the SOPFLOW_TASKS the task example needs



def _by_kind(union: Any) -> dict[str, type[BaseModel]]:
    """The models of a union discriminated on `kind` (Step, Measure), by kind."""
    return {typing.get_args(model.model_fields["kind"].annotation)[0]: model
            for model in typing.get_args(typing.get_args(union)[0])}


STEP_MODELS = _by_kind(schema.Step)
MEASURE_MODELS = _by_kind(schema.Measure)
_UNION_LINKS = {schema.Step: "[step](#steps)", schema.Measure: "[measure](#measure)",
                schema.OverdueAction: "[overdue action](#overdue-actions)"}
_SHARED = set(schema.StepBase.model_fields)
_SCALARS = {str: "text", int: "integer", float: "number", bool: "true/false", dt.date: "date (YYYY-MM-DD)"}
_PATTERNS = {
    constraint.pattern: name for constraint, name in (
        (typing.get_args(schema.Duration)[1], "duration: `30m`, `4h`, `2d`, `1w`"),
        (typing.get_args(schema.StepId)[1], "lower_snake_case name"),
        (typing.get_args(schema.SopId)[1], "lower-kebab-case name"),
        (typing.get_args(schema.SecretRef)[1], "`env:NAME` or `secret:NAME`"),
        (typing.get_args(schema.EmailAddress)[1], "email address"),
        (typing.get_args(schema.BlockSlug)[1], "notification block: `<block-type-slug>/<block-name>`"),
        (typing.get_args(schema.OutputName)[1], "name: letters, digits and _"),
        (schema.EmailStep.model_fields["template"].metadata[0], "template name: lowercase letters, digits, _ and -"),
        (schema.WebhookStep.model_fields["url"].metadata[0], "http(s) URL or `env:NAME`"),
        (typing.get_args(capacity.MonthKey)[1], "month: `YYYY-MM`"),
    )
}


def example_sop(kind: str) -> str:
    """A whole SOP file whose steps are the example of step kind `kind`."""
    return EXAMPLE_HEAD + EXAMPLES[kind]


def reference_text() -> str:
    """The text of docs/sop-format.md."""
    parts = [_INTRO, "## The SOP\n", _fields(schema.Sop), "```yaml\n" + example_sop("score") + "```\n"]
    for model in (schema.Person, schema.Objective, schema.Review, schema.Trigger):
        parts += [f"### {model.__name__}\n", _doc(model), _fields(model)]
        if model is schema.Objective:
            parts.append(_measures())
    parts += ["## Steps\n", "Every step has these fields, besides its kind's own:\n", _fields(schema.StepBase)]
    for kind, model in sorted(STEP_MODELS.items()):
        parts += [f"### {kind}\n", _doc(model) or _description(model.model_fields["kind"]) + "\n",
                  _fields(model, skip=_SHARED), _gives(model)]
        for nested in {"score": [schema.ScoreRule], "approval": [schema.FormInput]}.get(kind, []):
            parts += [f"#### {nested.__name__}\n", _doc(nested), _fields(nested)]
        if kind == "approval":
            parts.append(_overdue())
        parts.append("Example:\n\n```yaml\n" + EXAMPLES[kind] + "```\n")
    parts += [_reading(), _rules(), _capacity()]
    return "\n".join(part for part in parts if part).rstrip("\n") + "\n"


_INTRO = """\
# The SOP file format

<!-- Generated from sopflow/schema.py by `sopflow schema --write` (sopflow/reference.py); do not edit. -->

An SOP is one YAML file in `sop_definitions/`. Unknown keys are errors; `sopflow validate`
checks every file and prints each problem as `FILE:LINE: FIELD.PATH: reason`.
Editors can validate as you type with `sop_definitions/sop.schema.json`.
"""


def _doc(model: type[BaseModel]) -> str:
    """The first paragraph of the model's docstring."""
    text = (model.__doc__ or "").strip().split("\n\n")[0] if model.__doc__ != BaseModel.__doc__ else ""
    return " ".join(text.split()) + "\n" if text else ""


def _fields(model: type[BaseModel], skip: Collection[str] = ()) -> str:
    rows = ["| field | type | required | description |", "|---|---|---|---|"]
    for name, info in model.model_fields.items():
        if name not in skip:
            cells = (f"`{name}`", _type(info.annotation, info.metadata), _required(info), _description(info))
            rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def _description(info: FieldInfo) -> str:
    return " ".join((info.description or "").split())


def _required(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    default = info.get_default(call_default_factory=True)
    return "optional" if default in (None, "", [], {}) else f"default `{_flow(default)}`"


def _flow(value: Any) -> str:
    """`value` as YAML flow style: {A: 80, B: 60}, [a, b], true."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _type(annotation: Any, metadata: Sequence[Any] = ()) -> str:
    """A reader's name for a field's type, with its limits: `list of text (at least 1)`."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is Annotated:
        extra = [m for item in args[1:] for m in (item.metadata if isinstance(item, FieldInfo) else [item])]
        if any(isinstance(item, FieldInfo) and item.discriminator for item in args[1:]):
            return _UNION_LINKS[annotation]
        return _type(args[0], [*extra, *metadata])
    pattern = next((m.pattern for m in metadata if isinstance(m, StringConstraints) and m.pattern), None)
    if pattern:
        name = _PATTERNS.get(pattern, f"text matching `{pattern}`")
    elif origin is Literal:
        name = " / ".join(f"`{value}`" for value in args)
    elif origin in (Union, types.UnionType):
        name = " or ".join(_type(arg) for arg in args if arg is not type(None))
    elif origin is list:
        name = "list of " + _type(args[0])
    elif origin is dict:
        name = f"mapping of {_type(args[0])} to {_type(args[1])}"
    elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
        name = f"[{annotation.__name__}](#{annotation.__name__.lower()})"
    else:
        name = _SCALARS[annotation]
    noun = "entr" if origin is dict else "item"
    limits = ", ".join(limit for item in metadata if (limit := _limit(item, noun)))
    if not limits:
        return name
    return f"{name}; {limits}" if name.endswith(")") else f"{name} ({limits})"


def _limit(item: Any, noun: str) -> str | None:
    """`at least 1 item`, `at most 100 items`, `at least 0` for a length or bound; None for anything else."""
    plural = {"item": ("item", "items"), "entr": ("entry", "entries")}[noun]
    if isinstance(item, annotated_types.Ge):
        return f"at least {item.ge}"
    if isinstance(item, annotated_types.Le):
        return f"at most {item.le:,}"
    if isinstance(item, annotated_types.MinLen):
        return f"at least {item.min_length} {plural[item.min_length != 1]}"
    if isinstance(item, annotated_types.MaxLen):
        return f"at most {item.max_length} {plural[item.max_length != 1]}"
    return None


def _measures() -> str:
    """The measure kinds: how `sopflow report` computes an objective's metric, and when a KPI is on track."""
    parts = ["### Measure\n", (
        "`objective.measure` names how sopflow computes the metric from its store; `sopflow report` shows each "
        "KPI's value in the current period (`per`), its trend over the last 12 periods and whether it is on track: "
        "the value has covered at least the share of the way from `baseline` to `target` that the time from the "
        "SOP's first run to the `deadline` has; a `target` below the `baseline` means lower is better, and past "
        "the deadline on track means the target is met. A count in a period not yet over is held to the share of "
        "the period gone by. Without a measure `sopflow validate` warns that the KPI cannot be computed.\n")]
    for kind, model in sorted(MEASURE_MODELS.items()):
        doc = " ".join((model.__doc__ or "").split())
        parts += [f"#### {kind}\n", doc + "\n", _fields(model)]
    return "\n".join(parts)


def _overdue() -> str:
    """The actions an approval step's `overdue` list takes past its due time."""
    parts = ["#### Overdue actions\n", (
        "While an ask is unanswered past its due time, `sopflow up` takes each action of `overdue` once, `after` "
        "past the due time (a refused answer's new ask keeps the first ask's due time and what was done): "
        "`remind` emails the step's people again with fresh links, `escalate` emails the people of `to`, who may "
        "answer from then on too, and `decide` answers as `sopflow` with `reason` as the notes. People listed "
        "with an `email` get each notice with a signed link of their own (it answers once, as them, until a day "
        "after the due time, or 7 days after it was sent without one); a role in `notify` also gets it in its "
        "channel.\n")]
    for model in (schema.Remind, schema.Escalate, schema.Decide):
        action = typing.get_args(model.model_fields["action"].annotation)[0]
        parts += [f"##### {action}\n", _doc(model), _fields(model)]
    return "\n".join(parts)


def _gives(model: type[BaseModel]) -> str:
    kind = typing.get_args(model.model_fields["kind"].annotation)[0]
    keys = [*checks.COMMON_RESULT_KEYS, *checks.RESULT_KEYS[kind]]
    extra = {"approval": ", and each of its `inputs`", "task": ", and its declared `outputs` (any key if none)"}
    return (f"Later steps read its result as `steps.<id>.<value>`: {', '.join(f'`{k}`' for k in keys)}"
            f"{extra.get(kind, '')}.\n")


def _names(names: Any) -> str:
    return ", ".join(f"`{name}`" for name in sorted(names))


def _reading() -> str:
    return f"""\
## Conditions and templates

A step's `when:` is a condition: comparisons (`==`, `!=`, `<`, `<=`, `>`, `>=`), `in`, `not in`,
`and`, `or`, `not`, and values that are text, numbers, `true`/`false`, `null` and lists. It reads
`lead.<field>` ({_names(schema.LEAD_FIELDS)}) and `steps.<an earlier step id>.<value>`, where the value
is one that step gives (each step kind above says which). A step that has not run reads as `null`.

    lead.score >= 60 and lead.industry in ["software", "fintech"]
    steps.manager_approval.decision == "approve"

An email template is a Jinja2 file in `sop_definitions/templates/` with `{{% block subject %}}`,
`{{% block text %}}` and optionally `{{% block html %}}`. It reads `lead.<key>`
({_names(LEAD_CONTEXT_KEYS)}), `sop.<key>` ({_names(checks.SOP_KEYS)}) and
`steps.<an earlier step id>.<value>`. A value that is empty prints as nothing, never as `None`; say what
to print instead with `default`: `{{{{ lead.first_name | default("there") }}}}` (or `d(...)`,
or `lead.first_name or "there"`). Lead values that are empty for some leads:
{_names(checks.NULLABLE_LEAD_KEYS)}.
"""


def _rules() -> str:
    rules = [
        f"A file is UTF-8 text of at most {loader.MAX_FILE_BYTES:,} bytes ending in "
        f"{' or '.join(loader.SOP_SUFFIXES)}, holding one YAML document: no aliases (`*name`) or tags, "
        f"keys that are text and not repeated, lists and mappings nested at most {yamlpos.MAX_DEPTH} deep.",
        "Unknown keys are errors, with the closest known key suggested.",
        f"An SOP has 1 to {schema.MAX_STEPS} steps; step ids are unique; two files may not share an SOP id.",
        "`review.owner`, every step's `owner` and `assign_to`, each key of `notify` and each `escalate` action's "
        "`to` name a role of `roles` (an escalation names another role than the step's own).",
        "An approval step's `overdue` actions need its `due_within`; their `after` never decreases down the list; "
        "`decide` comes last, at most once, and only on a step whose inputs are all `required: false`.",
        "`next` and `on_reject` name a step or `end`, and only jump forward: steps may not loop.",
        f"A condition is at most {conditions.MAX_CONDITION_LENGTH:,} characters long and "
        f"{conditions.MAX_CONDITION_DEPTH} levels deep; it reads only lead fields and values that earlier "
        "steps give; a misspelled name is an error with the closest one suggested.",
        "A condition compares a choice input, an approval's `decision` "
        f"({_names(checks.DECISIONS)}) or `lead.status` only with one of its choices.",
        "An email's template exists in `templates/`, has its `subject` and `text` blocks, and reads only "
        "what the step gets: the lead's keys, the SOP's keys and values that earlier steps give.",
        "A template that prints a lead value which is empty for some leads, without `default(...)`, "
        "gets a warning (`FILE:LINE: FIELD.PATH: warning: ...`); warnings do not fail validation.",
        f"Approval input names may not be {_names(checks.RESERVED_RESULT_KEYS)}.",
        "An objective's `measure` names a step of the SOP where its kind takes one: an approval step for "
        "`sla_adherence` (with `due_within`) and `input_average` (a number or integer `input` of it); a "
        "`conversion` goes between two different statuses; with a percent measure "
        f"({_names(schema.PERCENT_KINDS)}) `baseline` and `target` are shares between 0 and 1. An objective "
        "without a measure gets a warning.",
        "A task step's `function` is registered in `SOPFLOW_TASKS` (`name=module:function`).",
        "A webhook's `send` is `lead` or `steps.<an earlier step id>`.",
        f"Each file reports every error it can be read for, at most {loader.MAX_ERRORS}, "
        "each as `FILE:LINE: FIELD.PATH: reason`.",
    ]
    return "## What `sopflow validate` checks\n\n" + "".join(f"- {rule}\n" for rule in rules)


def _capacity() -> str:
    """The S&OP capacity file: where it lives, what the plan computes from it, its fields and an example."""
    parts = ["## The S&OP capacity file\n", (
        f"`{capacity.CAPACITY_FILE}` under the SOP directory (not an SOP: the catalogue reads only the directory's "
        "own `*.yaml` files) says what operations can deliver per month and how the pipeline's demand converts "
        "into it; the monthly `sopflow-snop` run and `sopflow snop` read it, and `sopflow validate` checks it "
        "like an SOP file. Demand is the open opportunities: runs of "
        f"`{capacity.NEGOTIATION_SOP}` not ended whose lead is at status `opportunity`, each with the "
        f"`{capacity.VALUE_INPUT}` its `{capacity.TERMS_STEP}` step recorded, weighted by the stage the run reached "
        "(the last step it completed, else the nearest earlier step with a weight), in its "
        f"`{capacity.CLOSE_INPUT}` month. A deal whose close month has passed counts in the plan's first month; "
        "one without a close month is listed, not counted. Unknown keys are errors.\n")]
    for model in (capacity.CapacityPlan, capacity.Demand, capacity.PerDealValue, capacity.MonthlyCapacity,
                  capacity.SignOff):
        parts += [f"### {model.__name__}\n", _doc(model), _fields(model)]
    parts.append("Example:\n\n```yaml\n" + capacity.EXAMPLE + "```\n")
    return "\n".join(parts)
