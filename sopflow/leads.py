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


def lead_context(lead: object) -> dict[str, object]:
    """The lead as conditions and templates see it."""
    fields = ("id", "email", "name", "company", "title", "employees", "industry", "source", "status",
              "owner", "score", "grade")
    view = {name: getattr(lead, name) for name in fields}
    view["first_name"] = (view["name"] or "").split(" ")[0] or None
    return view
