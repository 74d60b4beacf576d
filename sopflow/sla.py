"""An approval step's `overdue` actions: the rules they follow, which are due for an ask, and the plan in words.

`after` counts from the ask's due time (the step's first ask: a refused answer does not restart the clock).
Housekeeping (`sopflow.services.housekeeping`) takes each due action once per ask, and not again for a later
ask of the same step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime

from sopflow.durations import parse_duration
from sopflow.errors import unknown
from sopflow.schema import ApprovalStep, Decide, Escalate, OverdueAction

Problem = tuple[tuple[str | int, ...], str]


def overdue_problems(step: ApprovalStep, roles: Sequence[str] | None) -> Iterator[Problem]:
    """What is wrong with the step's `overdue` list, each at its path under the step."""
    if not step.overdue:
        return
    if step.due_within is None:
        yield ("overdue",), ("overdue actions are taken past the step's due time, but the step has no due_within; "
                             "add one, e.g. due_within: 1d")
    last = len(step.overdue) - 1
    for index, action in enumerate(step.overdue):
        at: tuple[str | int, ...] = ("overdue", index)
        if isinstance(action, Escalate) and roles is not None and action.to not in roles:
            yield at + ("to",), unknown("role", action.to, sorted(roles))
        elif isinstance(action, Escalate) and action.to == step.owner:
            yield at + ("to",), f"the step's own role {action.to!r} is asked already; escalate to another role"
        if isinstance(action, Decide) and index != last:
            yield at + ("action",), ("decide answers the ask, so it comes last and once: move it after the other "
                                     "overdue actions and keep one")
        if isinstance(action, Decide) and (required := [n for n, spec in step.inputs.items() if spec.required]):
            yield at + ("action",), (f"an automatic decision cannot fill the step's required inputs "
                                     f"({', '.join(required)}); make them required: false, or leave decide out")
        if index and parse_duration(action.after) < parse_duration(step.overdue[index - 1].after):
            yield at + ("after",), (f"after {action.after} is earlier than the action before it "
                                    f"({step.overdue[index - 1].after}); list the actions in the order they happen")


@dataclass(frozen=True)
class DueAction:
    index: int  # its place in the step's `overdue` list
    action: OverdueAction
    due_at: datetime


def due_actions(step: ApprovalStep, due_by: datetime | None, now: datetime) -> list[DueAction]:
    """The step's overdue actions whose time has come by `now`, in order; none without a due time."""
    if due_by is None:
        return []
    timed = [DueAction(i, action, due_by + parse_duration(action.after)) for i, action in enumerate(step.overdue)]
    return [due for due in timed if due.due_at <= now]


def plan_words(step: ApprovalStep, people: Callable[[str], Sequence[str]]) -> str | None:
    """The step's overdue actions in one sentence for the form, or None when it has none."""
    if not step.overdue:
        return None
    words = []
    for action in step.overdue:
        if isinstance(action, Escalate):
            words.append(f"{action.after} after it, {action.to} ({', '.join(people(action.to))}) is asked too and "
                         "may answer from then on")
        elif isinstance(action, Decide):
            words.append(f"{action.after} after it, sopflow answers {action.decision} ({action.reason})")
        else:
            words.append(f"{action.after} after it, a reminder")
    return "If unanswered by the due time: " + "; ".join(words) + "."
