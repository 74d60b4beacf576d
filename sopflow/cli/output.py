"""How commands print: a table in a terminal (or a plain one in a pipe), JSON with --json, errors on stderr."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import Annotated, Any, NoReturn

import typer
from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.table import Table
from rich.text import Text


Row = dict[str, Any]
Json = Annotated[bool, typer.Option("--json", help="Print JSON (stable keys, ISO 8601 timestamps) instead of a table.")]


def choices(name: str, values: Sequence[str]) -> type[Enum]:
    """An option's allowed values (typer lists them in --help and refuses others)."""
    return Enum(name, {value: value for value in values}, type=str)  # type: ignore[return-value]


def picked(choice: Enum | None) -> str | None:
    return None if choice is None else choice.value


class ReaderGone(Exception):
    """Whoever read our output went away (`sopflow runs | head -1`): not an error, there is nobody to tell."""


def _write(text: str) -> None:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        raise ReaderGone from None  # not an OSError, which typer would turn into exit status 1


def say(*lines: str) -> None:
    """Print lines of text to stdout."""
    _write("".join(f"{line}\n" for line in lines))


def fail(command: str, message: str, code: int = 1) -> NoReturn:
    """Say what went wrong and what to do, in one sentence on stderr, and exit with `code`."""
    print(f"sopflow {command}: {message}", file=sys.stderr)
    raise typer.Exit(code)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def print_json(value: Any) -> None:
    _write(json.dumps(value, indent=2, default=_plain) + "\n")


def when(value: datetime | None) -> str:
    """A time for a table: "2026-11-23 14:05" (UTC), or "-"."""
    return f"{value:%Y-%m-%d %H:%M}" if value else "-"


def waited(since: datetime, now: datetime | None = None) -> str:
    """How long since `since`, as a person says it: "just now", "12m", "3h 12m", "2d 4h"."""
    minutes = max(int(((now or datetime.now(timezone.utc)) - since) / timedelta(minutes=1)), 0)
    days, hours, mins = minutes // 1440, minutes // 60 % 24, minutes % 60
    if days:
        return f"{days}d {hours}h" if hours else f"{days}d"
    if hours:
        return f"{hours}h {mins}m" if mins else f"{hours}h"
    return f"{mins}m" if mins else "just now"


def _text(value: Any) -> str:
    """A value as table text (never read as rich markup: names come from leads), "-" for nothing."""
    if isinstance(value, datetime):
        return when(value)
    return "-" if value is None or value == "" else str(value)


Column = tuple[str, Callable[[Row], Any]]
GAP = "   "  # between columns, as rich's SIMPLE_HEAD box draws them without edges


class Grid:
    """A table, aligned in one pass; laid out by rich only in a terminal too narrow for it (rich fits it to the
    window), because rich spends about half a millisecond a row measuring and wrapping cells."""

    def __init__(self, headers: Sequence[str], cells: Sequence[Sequence[str]]) -> None:
        self.headers, self.cells = headers, cells

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        header, rule, body = self._aligned()
        if not console.is_terminal:
            yield Text("\n".join([*header, rule, *body]))
        elif cell_len(rule) <= options.max_width:
            yield Text("\n".join(header), style="bold", no_wrap=True)
            yield Text("\n".join([rule, *body]), no_wrap=True)
        else:
            grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
            for name in self.headers:
                grid.add_column(name)
            for row in self.cells:
                grid.add_row(*map(Text, row))
            yield grid

    def _aligned(self) -> tuple[list[str], str, list[str]]:
        """The header's lines, the rule under it and the rows' lines, as rich's SIMPLE_HEAD box lays them out."""
        split = [[text.splitlines() or [""] for text in row] for row in [self.headers, *self.cells]]
        widths = [max(cell_len(line) for row in split for line in row[col]) for col in range(len(self.headers))]

        def lines(row: list[list[str]]) -> Iterator[str]:  # a cell of several lines makes its row as tall
            for depth in range(max(map(len, row))):
                parts = [cell[depth] if depth < len(cell) else "" for cell in row]
                yield GAP.join(part + " " * (width - cell_len(part)) for part, width in zip(parts, widths))

        rule = "\u2500" * (sum(widths) + len(GAP) * (len(widths) - 1))
        return list(lines(split[0])), rule, [line for row in split[1:] for line in lines(row)]


def table(rows: Sequence[Row], columns: Sequence[Column], title: str | None = None) -> RenderableType:
    """Rows as a table whose first line is the header row (after the title's line, when given)."""
    grid = Grid([header for header, _ in columns], [[_text(value(row)) for _, value in columns] for row in rows])
    return Group(Text(""), Text(title, style="bold"), grid) if title else grid


def show(*parts: RenderableType) -> None:
    """Print to stdout: styled in a terminal; plain, unwrapped and without trailing blanks in a pipe or file."""
    if sys.stdout.isatty():
        Console(highlight=False).print(Group(*parts))
        return
    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, highlight=False).print(Group(*parts))
    _write("".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines()))


def emit(as_json: bool, rows: Sequence[Row], columns: Sequence[Column], empty: str) -> None:
    """`rows` as JSON, as a table, or the sentence `empty` when there are none."""
    if as_json:
        print_json(list(rows))
    elif rows:
        show(table(rows, columns))
    else:
        say(empty)
