"""Leads from a CSV file: read as a stream, checked row by row, stored 500 rows per transaction (Prefect-free).

Columns are found by header name (case, spaces, `-` and `_` do not matter). A bad row is reported
as `FILE:LINE: column COLUMN: reason`, LINE being the physical line the row starts on, and the good
rows are imported all the same. Reports never repeat a row's values, only where it stands.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

import pydantic
from sqlalchemy import select

from sopflow.leads import LeadIn
from sopflow.store import reviews
from sopflow.store.db import transaction
from sopflow.store.leads import store_leads
from sopflow.store.models import Lead
from sopflow.text import validation_message

if TYPE_CHECKING:
    from _csv import _reader

BATCH = 500  # rows per transaction
MAX_LINE = 65_536  # characters; a whole lead row holds under 2,000
FIELDS = tuple(LeadIn.model_fields)
KNOWN = {**{name.replace("_", ""): name for name in FIELDS}, "emailaddress": "email", "fullname": "name",
         "jobtitle": "title"}
Progress = Callable[[int, int], None]  # (lines read, lines in the file)


class UnusableFile(Exception):
    """Nothing in the file can be imported; str() is one sentence naming the file."""


@dataclass(frozen=True)
class Problem:
    line: int
    kind: str  # "rejected" (the row is not imported), "duplicate" (skipped), "ignored" (a column)
    reason: str
    column: str | None = None

    def text(self, path: object) -> str:
        return f"{path}:{self.line}: " + (f"column {self.column}: " if self.column else "") + self.reason


@dataclass
class Summary:
    """What an import did (or, in a dry run, would do), with every problem in the order of the file."""

    dry_run: bool
    lines: int = 0  # the file's lines
    rows: int = 0
    imported: int = 0
    in_file: int = 0  # duplicates of an earlier row
    stored: int = 0  # leads the store already holds
    rejected: int = 0
    claimed: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.rejected else 0

    def sentence(self) -> str:
        counts = (f"duplicates {self.in_file + self.stored} (in file {self.in_file}, already stored {self.stored}), "
                  f"rejected {self.rejected}")
        if self.dry_run:
            return (f"dry run, nothing written: would import {self.imported}, {counts}, "
                    f"would claim {self.claimed} SOP runs")
        then = ("; the dispatcher of `sopflow up` starts them (if `sopflow up` is not running, they start when it does)"
                if self.claimed else "")
        return f"imported {self.imported}, {counts}, SOP runs claimed {self.claimed}{then}"

    def as_json(self) -> dict[str, object]:
        return {"dry_run": self.dry_run, "rows": self.rows, "imported": self.imported,
                "duplicates": {"in_file": self.in_file, "already_stored": self.stored},
                "rejected": self.rejected, "sop_runs_claimed": self.claimed,
                "problems": [asdict(problem) for problem in self.problems]}


def import_leads(path: Path, sop_ids: Sequence[str], dry_run: bool = False, url: str | None = None,
                 progress: Progress | None = None) -> Summary:
    """Import the CSV file's leads, each claiming a run of every SOP in `sop_ids`; UnusableFile if none can be."""
    summary = Summary(dry_run, lines=_scan(path))
    if dry_run:
        with transaction(url) as session:
            sop_ids = [sop for sop in sop_ids if sop not in reviews.retired(session, sop_ids)]
    seen: dict[str, int] = {}  # email -> the line it was first seen on
    batch: list[LeadIn] = []
    for line, done, lead in _read(path, summary):
        if progress:
            progress(done, summary.lines)
        if lead.email in seen:
            summary.in_file += 1
            summary.problems.append(Problem(line, "duplicate", f"the email on line {line} was first seen on line "
                                                               f"{seen[lead.email]}; skipped"))
            continue
        seen[lead.email] = line
        batch.append(lead)
        if len(batch) == BATCH:
            _store(batch, sop_ids, url, summary)
    _store(batch, sop_ids, url, summary)
    if not summary.rows:
        raise UnusableFile(f"{path} has a header but no rows; put one lead per line below it")
    return summary


def _store(batch: list[LeadIn], sop_ids: Sequence[str], url: str | None, summary: Summary) -> None:
    """Store the batch's leads and claim their runs; in a dry run only count those the store does not hold."""
    if not batch:
        return
    if summary.dry_run:
        with transaction(url) as session:
            known = len(session.scalars(select(Lead.id).where(Lead.email.in_([lead.email for lead in batch]))).all())
        summary.imported, summary.stored = summary.imported + len(batch) - known, summary.stored + known
        summary.claimed += (len(batch) - known) * len(sop_ids)
    else:
        admitted = store_leads(batch, sop_ids, url)
        created = sum(1 for lead in admitted if lead.created)
        summary.imported, summary.stored = summary.imported + created, summary.stored + len(batch) - created
        summary.claimed += sum(lead.newly_claimed for lead in admitted)  # a known lead claims an SOP added since
    batch.clear()


def _scan(path: Path) -> int:
    """The file's number of lines; UnusableFile unless it can be read and is UTF-8 throughout."""
    decoder, lines = codecs.getincrementaldecoder("utf-8")(), 0
    try:
        with path.open("rb") as raw:
            while chunk := raw.read(1 << 20):
                decoder.decode(chunk)
                lines += chunk.count(b"\n")
            decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        line = lines + exc.object.count(b"\n", 0, exc.start) + 1
        raise UnusableFile(f"{path} is not UTF-8 text (line {line} holds a byte that is not); "
                           "save it as CSV UTF-8") from None
    except OSError as exc:
        raise UnusableFile(f"cannot read {path}: {exc.strerror or exc}") from None
    return lines


def _lines(stream: IO[str], too_long: set[int]) -> Iterator[str]:
    """The stream's lines; one over MAX_LINE characters is read as an empty line and its number kept in `too_long`."""
    number = 0
    while line := stream.readline(MAX_LINE):
        number += 1
        if len(line) == MAX_LINE and not line.endswith(("\n", "\r")):
            while (rest := stream.readline(MAX_LINE)) and not rest.endswith(("\n", "\r")):
                pass
            too_long.add(number)
            line = "\n"
        yield line


def _read(path: Path, summary: Summary) -> Iterator[tuple[int, int, LeadIn]]:
    """Each good row's (first line, lines read, lead); every other row is counted and reported in `summary`."""
    with path.open(encoding="utf-8-sig", newline="") as stream:
        too_long: set[int] = set()
        reader = csv.reader(_lines(stream, too_long))
        fields, names = _header(path, reader, too_long, summary)
        end = reader.line_num
        while True:
            line, error = end + 1, None
            try:
                cells = next(reader, None)
            except csv.Error as exc:
                cells, error = [""], f"the row cannot be read as CSV ({exc})"
            end = reader.line_num
            if cells is None:
                return
            if long := sorted(too_long.intersection(range(line, end + 1))):
                error = f"line {long[0]} is longer than {MAX_LINE:,} characters, which no lead is"
            elif not error and not any(cell.strip() for cell in cells):
                continue  # a blank line, or a row of empty cells
            elif not error and len(cells) != len(fields):
                error = f"the row has {len(cells)} cells but the header has {len(fields)}; check its commas and quotes"
            summary.rows += 1
            found = [Problem(line, "rejected", error)] if error else _lead(line, cells, fields, names)
            if isinstance(found, LeadIn):
                yield line, end, found
            else:
                summary.rejected += 1
                summary.problems.extend(found)


def _lead(line: int, cells: list[str], fields: list[str | None], names: dict[str, str]) -> LeadIn | list[Problem]:
    """The row's lead, or what is wrong with it, column by column (an empty cell is a value not given)."""
    try:
        return LeadIn.model_validate({name: cell for name, cell in zip(fields, cells) if name and cell.strip()})
    except pydantic.ValidationError as exc:
        return [Problem(line, "rejected", "is empty; every lead needs an email" if error["type"] == "missing"
                        else validation_message(error), names[str(error["loc"][0])]) for error in exc.errors()]


def _header(path: Path, reader: _reader, too_long: set[int],
            summary: Summary) -> tuple[list[str | None], dict[str, str]]:
    """The lead field of each column (None: ignored, and reported) and each field's column name."""
    try:
        header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    except csv.Error as exc:
        raise UnusableFile(f"{path}: the header cannot be read as CSV ({exc})") from None
    if too_long:
        raise UnusableFile(f"{path}:{min(too_long)}: the line is longer than {MAX_LINE:,} characters; "
                           "is it a CSV file?")
    if header is None:
        raise UnusableFile(f"{path} is empty; its first line must name the columns, e.g. email,name,company")
    if any("\x00" in cell for cell in header):
        raise UnusableFile(f"{path} has NUL bytes in its header, so it is binary or UTF-16; save it as CSV UTF-8")
    line, fields, names = reader.line_num, [], {}
    for index, cell in enumerate(header, 1):
        name = _shown(cell.strip()) or f"{index} (no name)"
        found = KNOWN.get(re.sub(r"[\s_-]+", "", cell).lower())
        if found in names:
            raise UnusableFile(f"{path}:{line}: columns {names[found]} and {name} both hold the {found}; keep one")
        if found:
            names[found] = name
        else:
            summary.problems.append(Problem(line, "ignored", f"column {name} is not a lead field, so it is ignored; "
                                                             f"known: {', '.join(FIELDS)}"))
        fields.append(found)
    if "email" not in names:
        raise UnusableFile(f"{path}:{line}: no column holds the email; name one email (known: {', '.join(FIELDS)})")
    return fields, names


def _shown(name: str) -> str:
    """A column name as a terminal may print it: quoted and escaped when it holds a control character."""
    return name if name.isprintable() else repr(name)
