"""Who may answer an approval: the step's owner role, and every role the ask was escalated to."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sopflow.schema import Sop

SOPFLOW = "sopflow"  # the approver of record when an overdue `decide` action answers


@dataclass(frozen=True)
class Answerers:
    """The roles that may answer an ask (the owner first) and their people, each once, as the rosters spell them."""

    roles: tuple[str, ...]
    people: tuple[str, ...]

    @property
    def label(self) -> str:
        """`rep`, or `rep or manager` once escalated."""
        return " or ".join(self.roles)


def answerers(sop: Sop, owner: str, escalated: Sequence[str] = ()) -> Answerers:
    """The people of `owner` and of the roles in `escalated` (roles the SOP no longer has are left out)."""
    roles = tuple(dict.fromkeys(role for role in (owner, *escalated) if role in sop.roles))
    people = tuple(dict.fromkeys(person for role in roles for person in sop.people(role)))
    return Answerers(roles, people)


def roster_name(roster: Sequence[str], approver: str) -> str | None:
    """The roster's spelling of `approver` (matched ignoring case), or None when not on it."""
    return next((person for person in roster if person.casefold() == approver.strip().casefold()), None)


def refusal(roster: Sequence[str], role: str, approver: str) -> str:
    return f"{approver!r} is not on the {role} roster ({', '.join(roster)}); ask one of them to answer"
