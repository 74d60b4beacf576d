"""The compiler: an SOP becomes an immutable execution plan that the flow interpreter walks."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from functools import cached_property
from types import MappingProxyType
from typing import Mapping

from sopflow.conditions import Condition, parse_condition
from sopflow.durations import parse_duration
from sopflow.loader import LoadedSop
from sopflow.schema import END, ApprovalStep, Sop, Step


@dataclass(frozen=True)
class PlannedStep:
    step: Step
    condition: Condition | None
    following: str  # the next step in file order, or END: where a skipped step goes
    on_done: str  # where the step goes when it completes (its `next`, else `following`)
    on_reject: str | None  # approvals only
    due_within: timedelta | None


@dataclass(frozen=True)
class Plan:
    sop: Sop
    content_hash: str
    steps: Mapping[str, PlannedStep]
    first: str

    @property
    def version(self) -> int:
        return self.sop.version

    @cached_property
    def order(self) -> dict[str, int]:
        """Each step's position in the SOP (steps only jump forward)."""
        return {step_id: index for index, step_id in enumerate(self.steps)}


def compile_plan(loaded: LoadedSop) -> Plan:
    """Compile a checked SOP into its plan (conditions parsed, jumps resolved)."""
    sop = loaded.sop
    steps: dict[str, PlannedStep] = {}
    for index, step in enumerate(sop.steps):
        following = sop.steps[index + 1].id if index + 1 < len(sop.steps) else END
        steps[step.id] = PlannedStep(
            step=step,
            condition=parse_condition(step.when) if step.when else None,
            following=following,
            on_done=step.next or following,
            on_reject=step.on_reject if isinstance(step, ApprovalStep) else None,
            due_within=parse_duration(step.due_within) if step.due_within else None,
        )
    return Plan(sop, loaded.content_hash, MappingProxyType(steps), sop.steps[0].id)
