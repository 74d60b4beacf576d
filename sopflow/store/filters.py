"""Optional filters of a listing query."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select

T = TypeVar("T", bound=tuple[Any, ...])


def where_given(query: Select[T], *conditions: tuple[Any, Any]) -> Select[T]:
    """`query` narrowed to `column == value` for each (column, value) pair whose value is given."""
    for column, value in conditions:
        if value:
            query = query.where(column == value)
    return query
