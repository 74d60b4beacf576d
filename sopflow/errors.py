"""Errors in SOP files: each one names the file, the line, the field path and the reason."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sopflow.suggest import did_you_mean


@dataclass(frozen=True, order=True)
class SopError:
    file: Path
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


class SopWarning(SopError):
    """Something that runs would likely get wrong, though the SOP is valid: reported, never fatal."""

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: warning: {self.reason}"


class SopInvalid(Exception):
    """One or more SOP files are invalid; `errors` lists every problem found, `warnings` what else was noticed."""

    def __init__(self, errors: list[SopError], warnings: Iterable[SopError] = ()) -> None:
        self.errors = sorted(errors)
        self.warnings = sorted(warnings)
        super().__init__("\n".join(str(e) for e in self.errors))


def unknown(what: str, name: str, choices: Sequence[str]) -> str:
    """`role 'x' is not defined (did you mean 'y'?)`, or `...; known: a, b` when none is close."""
    return f"{what} {name!r} is not defined{did_you_mean(name, choices)}"
