"""The SOP file format: strict pydantic models (unknown keys are errors).

A step is `kind:` plus that kind's parameters, validated by a union discriminated on
`kind`; the registry of kinds is closed. `sop_definitions/sop.schema.json` is generated
from `Sop` by `sopflow schema --write`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, StringConstraints, Tag, model_validator

from sopflow.durations import DURATION_PATTERN

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
StepId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
SopId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$")]
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]
EmailAddress = Annotated[str, StringConstraints(
    pattern=r"^[^@\s<>,;:\"()\[\]\\]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$", max_length=320)]
BlockSlug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9-]*/[a-z0-9][a-z0-9-]*$", max_length=200)]

# `stage` is kept in the lead's `fields` JSON; opened/replied/meeting/visit count recent engagement events.
LEAD_FIELDS = ("name", "company", "title", "employees", "industry", "source", "status", "score", "grade", "stage",
               "opened", "replied", "meeting", "visit")
LeadField = Literal["name", "company", "title", "employees", "industry", "source", "status", "score", "grade", "stage",
                    "opened", "replied", "meeting", "visit"]
LeadStatus = Literal[
    "new", "working", "nurture", "qualified", "disqualified", "opportunity", "customer", "closed_lost"
]
END = "end"
MAX_STEPS = 100  # an SOP longer than this is several SOPs, chained by lead status


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


Per = Annotated[Literal["week", "month", "quarter"], Field(
    description="The period each value covers: week (ISO weeks, from Monday), month or quarter.")]
MeasureStep = Annotated[StepId, Field(description="The id of a step of this SOP.")]


class LeadsReachingStatus(Strict):
    """Leads whose status a step set to `status` in the period: a count of leads.

    Any SOP's `update_lead` step counts when it changed the lead's status to `status`; each lead once a period.
    """

    kind: Literal["leads_reaching_status"] = Field(description="Counts leads reaching a status per period.")
    status: LeadStatus = Field(description="The lead status counted, e.g. qualified.")
    per: Per


class Conversion(Strict):
    """Of the leads that reached `from_status` in the period, the percent that reached `to_status` afterwards.

    A lead counts in each period it reached `from_status` in, converted when it reached `to_status` after its first
    reach in that period; that may be periods later, so the latest periods rise as their leads move on. Baseline
    and target are shares: 0.3 for 30%.
    """

    kind: Literal["conversion"] = Field(description="The percent of leads moving from one status to another.")
    from_status: LeadStatus = Field(description="The status the leads counted reached first, e.g. opportunity.")
    to_status: LeadStatus = Field(description="The status they convert to, e.g. customer.")
    per: Per = "month"


class RunsCompleted(Strict):
    """This SOP's runs that ended with outcome completed in the period: a count of runs."""

    kind: Literal["runs_completed"] = Field(description="Counts this SOP's completed runs per period.")
    per: Per


class MedianTimeToStep(Strict):
    """The median hours from a run's start to the end of step `step`, over runs whose step completed in the period.

    The median is the nearest-rank 50th percentile: of an even count, the lower of the two middle values.
    """

    kind: Literal["median_time_to_step"] = Field(description="The median hours from a run's start to a step.")
    step: MeasureStep
    per: Per


class SlaAdherence(Strict):
    """The percent of runs whose approval step `step` was answered by its due time (its first ask's due_by).

    Counts runs whose step completed in the period; the step needs `due_within`. Baseline and target are
    shares: 0.98 for 98%.
    """

    kind: Literal["sla_adherence"] = Field(description="The percent of an approval step's answers given in time.")
    step: MeasureStep = Field(description="The id of an approval step of this SOP that has due_within.")
    per: Per


class InputAverage(Strict):
    """The average of a number an approval step records, over the step's answers in the period."""

    kind: Literal["input_average"] = Field(description="The average of a number an approval step records.")
    step: MeasureStep = Field(description="The id of an approval step of this SOP.")
    input: StepId = Field(description="A number or integer input of that step, e.g. satisfaction.")
    per: Per


Measure = Annotated[
    Union[LeadsReachingStatus, Conversion, RunsCompleted, MedianTimeToStep, SlaAdherence, InputAverage],
    Field(discriminator="kind"),
]
MEASURE_KINDS = ("conversion", "input_average", "leads_reaching_status", "median_time_to_step", "runs_completed",
                 "sla_adherence")
PERCENT_KINDS = ("conversion", "sla_adherence")  # their baseline and target are shares between 0 and 1


class Objective(Strict):
    """A SMART objective: what is measured, from where, to where, by when."""

    statement: Text = Field(description="The objective in one sentence: increase qualified leads by 20% this quarter.")
    metric: Text = Field(description="What is measured, e.g. qualified leads per quarter.")
    baseline: float = Field(description="The metric's value today; a share (0.3 for 30%) with a percent measure.")
    target: float = Field(description="The value to reach by the deadline; below the baseline when lower is better.")
    deadline: dt.date = Field(description="When the target is due (YYYY-MM-DD).")
    measure: Measure | None = Field(default=None, description=(
        "How sopflow computes the metric from its store, for `sopflow report`: one of the measure kinds, e.g. "
        "{kind: leads_reaching_status, status: qualified, per: quarter}. Without it the KPI is not computed."))


class Review(Strict):
    """How often the SOP is reviewed, and which role owns the review."""

    every: Duration = Field(description=(
        "How often the SOP is reviewed: a duration like 4w or 12w, counted from the last review's decision."))
    owner: RoleName = Field(description=(
        "The role (a key of `roles`) whose people decide the review: keep, revise or retire."))


class Trigger(Strict):
    """What starts a run: a new lead, a lead reaching a status, or a schedule.

    `event: new_lead` · `event: lead_status` with `status: qualified` · `cron: "0 9 * * 1"`
    """

    event: Literal["new_lead", "lead_status"] | None = Field(
        default=None, description="`new_lead`: a run per new lead; `lead_status`: a run when a lead reaches `status`."
    )
    status: LeadStatus | None = Field(default=None, description="With event: lead_status, the status that starts a run.")
    cron: Text | None = Field(default=None, description='A cron schedule instead of an event, e.g. "0 9 * * 1".')
    timezone: str = Field(default="UTC", description="The time zone of `cron`, e.g. Europe/Berlin.")

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if (self.event is None) == (self.cron is None):
            raise ValueError("a trigger needs exactly one of event: new_lead, event: lead_status or cron: '<schedule>'")
        if (self.event == "lead_status") != (self.status is not None):
            raise ValueError("status is given exactly when event is lead_status")
        return self

    def starts_on(self, event: str, status: str | None = None) -> bool:
        """True when a lead event (`new_lead`, or `lead_status` with its new status) starts this SOP."""
        return self.event == event and self.status == status


class StepBase(Strict):
    id: StepId = Field(description="The step's name, unique in the SOP: lower_snake_case; later steps read "
                       "its result as steps.<id>.<value>.")
    owner: RoleName = Field(description="The role that owns this step.")
    description: str = Field(default="", description="What the step is for, for the people who follow the SOP.")
    when: str | None = Field(default=None, description="Condition; the step is skipped when false.")
    due_within: Duration | None = Field(default=None, description="SLA: the step is due this long after it starts.")
    next: str | None = Field(default=None, description="Step id to go to afterwards, or `end`.")


class ScoreRule(Strict):
    """Points given when a lead field matches; every given matcher must hold.

    `group` says which total the points add to: `fit` (who the lead is), `engagement` (what the lead
    did lately: opened, replied, meeting, visit) or `negative` (never capped; points are 0 or less).
    """

    label: Text = Field(description="What the rule rewards, shown in the score's breakdown.")
    field: LeadField = Field(description="The lead field the rule looks at.")
    points: int = Field(description="Points added when the rule matches (0 or less in the negative group).")
    group: Literal["fit", "engagement", "negative"] = Field(
        default="fit", description="The total the points add to: fit, engagement or negative."
    )
    equals: str | int | float | None = Field(default=None, description="Matches this value (text ignoring case).")
    one_of: list[str] | None = Field(default=None, description="Matches any of these values, ignoring case.")
    contains_any: list[str] | None = Field(
        default=None, description="Matches text containing any of these, ignoring case."
    )
    at_least: float | None = Field(default=None, description="Matches a number at least this big.")
    at_most: float | None = Field(default=None, description="Matches a number at most this big.")

    @model_validator(mode="after")
    def _has_matcher(self) -> ScoreRule:
        matchers = (self.equals, self.one_of, self.contains_any, self.at_least, self.at_most)
        if all(m is None for m in matchers):
            raise ValueError("a rule needs a matcher: equals, one_of, contains_any, at_least or at_most")
        if self.group == "negative" and self.points > 0:
            raise ValueError(f"a rule in the negative group takes points of 0 or less, not {self.points}; "
                             "use group fit or engagement for positive points")
        return self


class ScoreStep(StepBase):
    kind: Literal["score"] = Field(description="Scores the lead with rules; stores score, grade and stage.")
    DEFAULT_STAGES: ClassVar[dict[str, int]] = {"sql": 70, "mql": 40}

    rules: list[ScoreRule] = Field(min_length=1, description="The scoring rules; each matching rule adds its points.")
    grades: dict[Literal["A", "B", "C"], int] = Field(
        default_factory=lambda: {"A": 80, "B": 60, "C": 40},
        description="Lowest score for each grade; anything lower is D.",
    )
    caps: dict[Literal["fit", "engagement"], Annotated[int, Field(ge=0)]] = Field(
        default_factory=dict,
        description="Most points the fit and engagement groups may add, e.g. {fit: 60, engagement: 40}; "
        "the negative group is never capped.",
    )
    decay_days: int = Field(default=30, ge=1, description="Engagement events count for this many days.")
    scores_lead: bool = Field(
        default=False,
        description="This step is the lead's scoring model: its score, grade and stage go on the lead's record "
        "(and the daily rescoring uses its rules). One score step among all SOPs says so; the others' scores "
        "stay with their runs (steps.<id>.score).",
    )
    stages: dict[Literal["sql", "mql"], int] = Field(
        default_factory=lambda: dict(ScoreStep.DEFAULT_STAGES),
        description="Lowest score for each lifecycle stage (sql, mql); anything lower is `lead`.",
    )

    @model_validator(mode="after")
    def _stages_in_order(self) -> ScoreStep:
        sql, mql = self.stages.get("sql"), self.stages.get("mql")
        if sql is not None and mql is not None and sql < mql:
            raise ValueError(f"stages.sql ({sql}) must be at least stages.mql ({mql}); an SQL is a further stage")
        return self


class EmailStep(StepBase):
    kind: Literal["email"] = Field(description="Renders a template and emails the lead, once per run.")
    template: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")] = Field(
        description="Name of a template in sop_definitions/templates/, without .j2."
    )
    to: Literal["lead"] = Field(default="lead", description="Who gets the email: the lead.")


class FormInput(Strict):
    """A value the person answering records in the form (a deal's discount, the lead's budget)."""

    label: Text = Field(description="The question the form shows.")
    type: Literal["text", "number", "integer", "yes_no", "choice", "month"] = Field(
        default="text", description="What the answer is: text, number, integer, yes_no, choice or month (YYYY-MM)."
    )
    choices: list[Text] | None = Field(
        default=None, description="With type: choice, the answers to choose from; conditions compare with these only."
    )
    required: bool = Field(default=True, description="Whether the form can be sent without it.")
    minimum: float | None = Field(default=None, description="Smallest number or integer accepted.")
    maximum: float | None = Field(default=None, description="Largest number or integer accepted.")

    @model_validator(mode="after")
    def _choices_for_choice(self) -> FormInput:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("choices are given exactly when type is choice")
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("number", "integer"):
            raise ValueError("minimum and maximum apply to number and integer inputs only")
        return self


After = Annotated[Duration, Field(description="How long past the step's due time the action is taken, e.g. 2h.")]


class Remind(Strict):
    """Email the step's people again, each with a fresh link, `after` past the due time."""

    action: Literal["remind"] = Field(description="Reminds the people of the step's owner role again.")
    after: After


class Escalate(Strict):
    """Email the people of role `to`, who may answer the ask from then on as well as the step's own people."""

    action: Literal["escalate"] = Field(description="Hands the ask to another role as well.")
    to: RoleName = Field(description="The role (a key of `roles`) whose people are asked too, e.g. manager.")
    after: After


class Decide(Strict):
    """Answer the ask automatically with `decision`, as `sopflow`, with `reason` as its notes; the run goes on."""

    action: Literal["decide"] = Field(description="Answers the ask on nobody's behalf.")
    decision: Literal["approve", "reject"] = Field(description="The answer given: approve, or reject (on_reject).")
    reason: Text = Field(description="Kept as the answer's notes, e.g. No answer within a day.")
    after: After


OverdueAction = Annotated[Union[Remind, Escalate, Decide], Field(discriminator="action")]
OVERDUE_ACTIONS = ("decide", "escalate", "remind")


class ApprovalStep(StepBase):
    kind: Literal["approval"] = Field(description="Pauses the run until someone of the owner role answers.")
    prompt: Text = Field(description="What the approver is asked to decide.")
    checklist: list[Text] = Field(default_factory=list, description="Points the approver checks before answering.")
    inputs: dict[StepId, FormInput] = Field(
        default_factory=dict, description="Values recorded with the answer; later steps read steps.<id>.<input>."
    )
    on_reject: str = Field(default=END, description="Step id to go to when rejected, or `end`.")
    overdue: list[OverdueAction] = Field(default_factory=list, max_length=10, description=(
        "What sopflow does while the ask is unanswered past its due time (needs due_within), in order: "
        "remind, escalate to another role, decide; e.g. [{action: remind, after: 2h}, "
        "{action: escalate, to: manager, after: 4h}, {action: decide, decision: reject, after: 1d, reason: ...}]."))


class UpdateLeadStep(StepBase):
    kind: Literal["update_lead"] = Field(description="Sets the lead's status, owner or fields.")
    status: LeadStatus | None = Field(
        default=None, description="The lead's new status; SOPs triggered by it start."
    )
    assign_to: RoleName | None = Field(default=None, description="Role whose first person becomes the lead owner.")
    fields: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Values stored in the lead's fields, e.g. {stage: sql}."
    )

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateLeadStep:
        if self.status is None and self.assign_to is None and not self.fields:
            raise ValueError("an update_lead step needs status, assign_to or fields")
        return self


class WaitStep(StepBase):
    kind: Literal["wait"] = Field(description="Waits, holding no process, before the next step.")
    duration: Duration = Field(description="How long the run waits (holding no process) before going on.")


SecretRef = Annotated[str, StringConstraints(pattern=r"^(env|secret):[A-Za-z0-9_-]+$")]


class WebhookStep(StepBase):
    kind: Literal["webhook"] = Field(description="POSTs the lead or an earlier step's result to a URL.")
    url: Annotated[str, StringConstraints(pattern=r"^(https?://\S+|env:[A-Za-z0-9_]+)$")] = Field(
        description="Where to POST: an http(s) URL, or env:NAME to read it from the environment."
    )
    auth: SecretRef | None = Field(
        default=None, description="Bearer token: env:NAME (environment) or secret:NAME (a Prefect Secret block)."
    )
    send: str = Field(default="lead", description="What to POST: `lead`, or `steps.<earlier step id>` for its result.")


OutputName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]


class TaskStep(StepBase):
    kind: Literal["task"] = Field(description="Calls a function the team registered by name.")
    function: StepId = Field(description="A function the team registered by name in SOPFLOW_TASKS.")
    params: dict[str, str | int | float | bool] = Field(
        default_factory=dict, description="Values passed to the function as `params`."
    )
    outputs: list[OutputName] | None = Field(
        default=None,
        description="The keys of the dict the function returns; when given, later steps may read only these "
        "as steps.<id>.<output>.",
    )


Step = Annotated[
    Union[ScoreStep, EmailStep, ApprovalStep, UpdateLeadStep, WaitStep, WebhookStep, TaskStep],
    Field(discriminator="kind"),
]
STEP_KINDS = ("approval", "email", "score", "task", "update_lead", "wait", "webhook")


class Person(Strict):
    """Someone on a role's roster with the address sopflow emails their approval notices to."""

    name: Text = Field(description="The person's name, as they answer approvals (matched ignoring case).")
    email: EmailAddress = Field(description="Where approval notices for this person go, e.g. priya@example.com.")


def _roster_entry(value: Any) -> str:
    return "person" if isinstance(value, (dict, Person)) else "name"


# A roster entry: a name (text), or {name, email}; a union told apart by shape (its tags never reach an error).
RosterEntry = Annotated[Union[Annotated[Text, Tag("name")], Annotated[Person, Tag("person")]],
                        Discriminator(_roster_entry)]
ROSTER_TAGS = ("name", "person")


class Sop(Strict):
    """One Standard Operating Procedure."""

    id: SopId = Field(description="lower-kebab-case; also the name of the SOP's Prefect flow and deployment.")
    name: Text = Field(description="The SOP's title.")
    # at most the store's integer column
    version: int = Field(ge=1, le=2**31 - 1, description="Raise it on every change; each run records it.")
    owner: Text = Field(description="The person accountable for this SOP.")
    objective: Objective = Field(description="The SMART objective the SOP serves.")
    roles: dict[RoleName, Annotated[list[RosterEntry], Field(min_length=1)]] = Field(
        min_length=1, description=(
            "Each role (lower_snake_case) and the people who may act for it: each a name, or {name, email} "
            "for someone who gets approval notices by email.")
    )
    notify: dict[RoleName, BlockSlug] = Field(default_factory=dict, description=(
        "Roles whose approval notices also go to a team channel: role -> a Prefect notification block as "
        "<block-type-slug>/<block-name>, e.g. {rep: slack-webhook/sales-reps}."))
    trigger: Trigger = Field(description="What starts a run.")
    review: Review = Field(description="The review cadence and the role that owns it.")
    compliance: list[Text] = Field(default_factory=list, description="Consent and privacy rules the SOP follows.")
    steps: list[Step] = Field(
        min_length=1, max_length=MAX_STEPS,
        description="The steps, run in order unless `next` or `on_reject` jump forward.",
    )

    @property
    def flow_attr(self) -> str:
        """The module-level name of this SOP's compiled flow in `flows.sops`."""
        return self.id.replace("-", "_")

    def people(self, role: str) -> list[str]:
        """The names of `role`'s people, as its roster spells them (KeyError for a role the SOP does not have)."""
        return [entry if isinstance(entry, str) else entry.name for entry in self.roles[role]]

    def emails(self, role: str) -> dict[str, str]:
        """`role`'s people who have an email address: name -> address."""
        return {entry.name: entry.email for entry in self.roles[role] if isinstance(entry, Person)}
