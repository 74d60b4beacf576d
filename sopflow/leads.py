"""What a new lead must look like, wherever it comes from (CLI, HTTP intake, import)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def _email(value: str) -> str:
    value = value.strip().lower()
    if not _EMAIL.match(value):
        raise ValueError("not an email address")
    return value


Short = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class LeadIn(BaseModel):
    """A lead as submitted; unknown fields are refused so typos are not lost silently."""

    model_config = ConfigDict(extra="forbid")

    email: Annotated[str, StringConstraints(max_length=320), AfterValidator(_email)]
    name: Short | None = None
    company: Short | None = None
    title: Short | None = None
    employees: int | None = Field(default=None, ge=0)
    industry: Short | None = None
    source: Short | None = None
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
