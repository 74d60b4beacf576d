"""The SOP file format: strict pydantic models (unknown keys are errors).

A step is `kind:` plus that kind's parameters, validated by a union discriminated on
`kind`; the registry of kinds is closed. `sop_definitions/sop.schema.json` is generated
from `Sop` by `sopflow schema --write`.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from sopflow.durations import DURATION_PATTERN

Duration = Annotated[str, StringConstraints(pattern=DURATION_PATTERN)]
StepId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
SopId = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]*[a-z0-9]$")]
RoleName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$")]
Text = Annotated[str, StringConstraints(min_length=1, strip_whitespace=True)]

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


class Objective(Strict):
    """A SMART objective: what is measured, from where, to where, by when."""

    statement: Text
    metric: Text
    baseline: float
    target: float
    deadline: dt.date


class Review(Strict):
    """How often the SOP is reviewed, and which role owns the review."""

    every: Duration
    owner: RoleName


class Trigger(Strict):
    """What starts a run: a new lead, a lead reaching a status, or a schedule.

    `event: new_lead` · `event: lead_status` with `status: qualified` · `cron: "0 9 * * 1"`
    """

    event: Literal["new_lead", "lead_status"] | None = None
    status: LeadStatus | None = Field(default=None, description="With event: lead_status, the status that starts a run.")
    cron: Text | None = None
    timezone: str = "UTC"

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
    id: StepId
    owner: RoleName = Field(description="The role that owns this step.")
    description: str = ""
    when: str | None = Field(default=None, description="Condition; the step is skipped when false.")
    due_within: Duration | None = Field(default=None, description="SLA: the step is due this long after it starts.")
    next: str | None = Field(default=None, description="Step id to go to afterwards, or `end`.")


class ScoreRule(Strict):
    """Points given when a lead field matches; every given matcher must hold.

    `group` says which total the points add to: `fit` (who the lead is), `engagement` (what the lead
    did lately: opened, replied, meeting, visit) or `negative` (never capped; points are 0 or less).
    """

    label: Text
    field: LeadField
    points: int
    group: Literal["fit", "engagement", "negative"] = "fit"
    equals: str | int | float | None = None
    one_of: list[str] | None = None
    contains_any: list[str] | None = None
    at_least: float | None = None
    at_most: float | None = None

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
    kind: Literal["score"]
    DEFAULT_STAGES: ClassVar[dict[str, int]] = {"sql": 70, "mql": 40}

    rules: list[ScoreRule] = Field(min_length=1)
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
    kind: Literal["email"]
    template: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]*$")] = Field(
        description="Name of a template in sop_definitions/templates/, without .j2."
    )
    to: Literal["lead"] = Field(default="lead", description="Who gets the email: the lead.")


class FormInput(Strict):
    """A value the person answering records in the form (a deal's discount, the lead's budget)."""

    label: Text
    type: Literal["text", "number", "integer", "yes_no", "choice"] = "text"
    choices: list[Text] | None = None
    required: bool = True
    minimum: float | None = None
    maximum: float | None = None

    @model_validator(mode="after")
    def _choices_for_choice(self) -> FormInput:
        if (self.type == "choice") != bool(self.choices):
            raise ValueError("choices are given exactly when type is choice")
        if (self.minimum is not None or self.maximum is not None) and self.type not in ("number", "integer"):
            raise ValueError("minimum and maximum apply to number and integer inputs only")
        return self


class ApprovalStep(StepBase):
    kind: Literal["approval"]
    prompt: Text = Field(description="What the approver is asked to decide.")
    checklist: list[Text] = Field(default_factory=list, description="Points the approver checks before answering.")
    inputs: dict[StepId, FormInput] = Field(
        default_factory=dict, description="Values recorded with the answer; later steps read steps.<id>.<input>."
    )
    on_reject: str = Field(default=END, description="Step id to go to when rejected, or `end`.")


class UpdateLeadStep(StepBase):
    kind: Literal["update_lead"]
    status: LeadStatus | None = None
    assign_to: RoleName | None = Field(default=None, description="Role whose first person becomes the lead owner.")
    fields: dict[str, str | int | float | bool] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _changes_something(self) -> UpdateLeadStep:
        if self.status is None and self.assign_to is None and not self.fields:
            raise ValueError("an update_lead step needs status, assign_to or fields")
        return self


class WaitStep(StepBase):
    kind: Literal["wait"]
    duration: Duration = Field(description="How long the run waits (holding no process) before going on.")


SecretRef = Annotated[str, StringConstraints(pattern=r"^(env|secret):[A-Za-z0-9_-]+$")]


class WebhookStep(StepBase):
    kind: Literal["webhook"]
    url: Annotated[str, StringConstraints(pattern=r"^(https?://\S+|env:[A-Za-z0-9_]+)$")] = Field(
        description="Where to POST: an http(s) URL, or env:NAME to read it from the environment."
    )
    auth: SecretRef | None = Field(
        default=None, description="Bearer token: env:NAME (environment) or secret:NAME (a Prefect Secret block)."
    )
    send: str = Field(default="lead", description="What to POST: `lead`, or `steps.<earlier step id>` for its result.")


class TaskStep(StepBase):
    kind: Literal["task"]
    function: StepId = Field(description="A function the team registered by name in SOPFLOW_TASKS.")
    params: dict[str, str | int | float | bool] = Field(default_factory=dict)


Step = Annotated[
    Union[ScoreStep, EmailStep, ApprovalStep, UpdateLeadStep, WaitStep, WebhookStep, TaskStep],
    Field(discriminator="kind"),
]
STEP_KINDS = ("approval", "email", "score", "task", "update_lead", "wait", "webhook")


class Sop(Strict):
    """One Standard Operating Procedure."""

    id: SopId
    name: Text
    version: int = Field(ge=1, le=2**31 - 1)  # the store's integer column
    owner: Text = Field(description="The person accountable for this SOP.")
    objective: Objective
    roles: dict[RoleName, Annotated[list[Text], Field(min_length=1)]] = Field(min_length=1)
    trigger: Trigger
    review: Review
    compliance: list[Text] = Field(default_factory=list, description="Consent and privacy rules the SOP follows.")
    steps: list[Step] = Field(min_length=1, max_length=MAX_STEPS)

    @property
    def flow_attr(self) -> str:
        """The module-level name of this SOP's compiled flow in `flows.sops`."""
        return self.id.replace("-", "_")
