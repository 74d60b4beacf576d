"""Characters that have no business in names, subjects and headers: control and invisible ones.

C0/C1 controls (NUL, ESC, CR, LF, ...), bidirectional overrides and isolates (which make
"moc.evil" read as "live.com"), zero-width spaces, line separators and the byte-order mark.
Lead data containing them is refused at the door; headers built from older data drop them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

INVISIBLE = re.compile(
    "[\x00-\x1f\x7f-\x9f\u00ad\u061c\u200b\u200e\u200f\u2028-\u202e\u2060-\u2064\u2066-\u2069\ufeff]"
)


def invisible_in(value: str) -> str | None:
    """A description of the first control or invisible character in `value`, or None."""
    found = INVISIBLE.search(value)
    return f"U+{ord(found.group()):04X} at position {found.start() + 1}" if found else None


def refuse_invisible(value: str) -> str:
    """A pydantic validator: `value` unchanged, or ValueError naming the offending character."""
    where = invisible_in(value)
    if where:
        raise ValueError(f"contains a control or invisible character ({where}); remove it")
    return value


_BREAKS = re.compile("[\t\n\x0b\x0c\r\x1c-\x1f\x85\u2028\u2029]")


def header_text(value: str) -> str:
    """`value` fit for one email header line: line breaks made spaces, other invisible characters dropped."""
    return " ".join(INVISIBLE.sub("", _BREAKS.sub(" ", value)).split())


def notes_problem(notes: str, needed: str | None = None) -> str | None:
    """Why `notes` cannot go with an answer: a control or invisible character in them, or `needed` (saying why
    notes are required) when they are empty; None when they fit."""
    where = invisible_in(notes)
    if where:
        return f"the notes contain a control or invisible character ({where}); remove it"
    return needed if needed and not notes.strip() else None


def validation_message(error: Mapping[str, Any]) -> str:
    """One of pydantic's errors in words: its message without the "Value error, " that our validators' raise gets."""
    return str(error["msg"]).removeprefix("Value error, ")
