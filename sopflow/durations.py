"""Durations written in SOP files: `30m`, `4h`, `2d`, `1w`."""

from __future__ import annotations

import re
from datetime import timedelta

DURATION_PATTERN = r"^[1-9][0-9]*[mhdw]$"
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """Turn `2d` into a timedelta; raise ValueError naming the accepted forms."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration; write a number and a unit, like 30m, 4h, 2d or 1w")
    return timedelta(**{_UNITS[text[-1]]: int(text[:-1])})
