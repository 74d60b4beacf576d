"""Did-you-mean hints for a name that is not one of the known ones."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


def close_match(word: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest of `choices`, or "" when none is close."""
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """" (did you mean 'x'?)" for the closest known name, else "; known: a, b" (or "; none is known")."""
    choices = sorted(set(known))
    return close_match(name, choices) or (f"; known: {', '.join(choices)}" if choices else "; none is known")
