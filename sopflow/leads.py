"""What a new lead must look like, wherever it comes from (CLI, HTTP intake, import)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from sopflow.text import refuse_invisible

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_EMPLOYEES = 2**31 - 1  # the store's integer column
_LEAD_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def is_lead_id(value: str) -> bool:
    """True when `value` has the shape of a lead id (a UUID as the store writes it)."""
    return _LEAD_ID.match(value) is not None


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


def _text(max_length: int) -> object:
    """Text of 1 to `max_length` characters (the store's column), free of control and invisible characters."""
    return Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=max_length),
                     AfterValidator(refuse_invisible)]


Text200, Text100 = _text(200), _text(100)


class LeadIn(BaseModel):
    """A lead as submitted; unknown fields are refused so typos are not lost silently."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(max_length=320), AfterValidator(refuse_invisible), AfterValidator(_email)]
    name: Text200 | None = None
    company: Text200 | None = None
    title: Text200 | None = None
    employees: int | None = Field(default=None, ge=0, le=MAX_EMPLOYEES)
    industry: Text100 | None = None
    source: Text100 | None = None
    do_not_contact: bool = False


# What conditions and templates can read of a lead (lead_context builds exactly these).
LEAD_CONTEXT_KEYS = frozenset({
    "id", "email", "name", "company", "title", "employees", "industry", "source", "status", "owner",
    "score", "grade", "first_name", "stage", "opened", "replied", "meeting", "visit",
})


def lead_context(lead: object, decay_days: int = 30) -> dict[str, object]:
    """The lead as conditions and templates see it.

    Besides its columns: `stage` (kept in the lead's `fields`) and the counts of its engagement
    events (`opened`, `replied`, `meeting`, `visit`) of the last `decay_days` days — one small
    query, when the lead belongs to a session (else the counts are 0).
    """
    from sqlalchemy import inspect

    from sopflow.scoring import ENGAGEMENT_KINDS, engagement_since
    from sopflow.store import engagement

    fields = ("id", "email", "name", "company", "title", "employees", "industry", "source", "status",
              "owner", "score", "grade")
    view = {name: getattr(lead, name) for name in fields}
    view["first_name"] = (view["name"] or "").split(" ")[0] or None
    extra = getattr(lead, "fields", None)
    view["stage"] = extra.get("stage") if isinstance(extra, dict) else None
    state = inspect(lead, raiseerr=False)
    session = state.session if state is not None else None
    if session is not None and view["id"] is not None:
        view.update(engagement.counts(session, view["id"], engagement_since(decay_days)))
    else:
        view.update(dict.fromkeys(ENGAGEMENT_KINDS, 0))
    return view
