"""Did-you-mean hints for a name that is not one of the known ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest known name, else "; known: a, b" (or "; none is known")."""
    choices = sorted(set(known))
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f" (did you mean {close[0]!r}?)"
    return f"; known: {', '.join(choices)}" if choices else "; none is known"
