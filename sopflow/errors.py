"""Errors in SOP files: each one names the file, the line, the field path and the reason."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, order=True)
class SopError:
    file: Path
    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.reason}"


class SopInvalid(Exception):
    """One or more SOP files are invalid; `errors` lists every problem found."""

    def __init__(self, errors: list[SopError]) -> None:
        self.errors = sorted(errors)
        super().__init__("\n".join(str(e) for e in self.errors))
