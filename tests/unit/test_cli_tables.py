"""The CLI's tables: laid out in one pass exactly as rich lays them out; by rich in a terminal too narrow for them."""

from __future__ import annotations

import io

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sopflow.cli.output import show, table

COLUMNS = [("Lead", lambda r: r["name"]), ("Company", lambda r: r["company"]), ("Notes", lambda r: r["notes"])]
ROWS = [
    {"name": "Ada [bold]Byron[/bold]", "company": "営業株式会社", "notes": "called twice\nwants a demo"},
    {"name": "Bo", "company": None, "notes": ""},
    {"name": "Chidi Okafor-Longname", "company": "Acme", "notes": 12},
]


def _rich_layout(rows: list[dict], columns: list) -> str:
    """What rich itself prints for the same cells in a wide, colourless console, trailing blanks removed."""
    grid = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for header, _ in columns:
        grid.add_column(header)
    for row in rows:
        grid.add_row(*(Text("-" if value(row) in (None, "") else str(value(row))) for _, value in columns))
    buffer = io.StringIO()
    Console(file=buffer, width=100_000, color_system=None, highlight=False).print(grid)
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def test_a_piped_table_is_laid_out_as_rich_lays_it_out(capsys):
    show(table(ROWS, COLUMNS))
    printed = capsys.readouterr().out
    assert printed == _rich_layout(ROWS, COLUMNS)
    assert "Ada [bold]Byron[/bold]" in printed  # a lead's name is never read as markup
    assert printed.splitlines()[3].split() == ["wants", "a", "demo"]  # a cell's second line, under its column


def test_a_titled_table_in_a_pipe_keeps_its_title_line(capsys):
    show(table(ROWS[1:], COLUMNS, title="Decisions"))
    assert capsys.readouterr().out == "\nDecisions\n" + _rich_layout(ROWS[1:], COLUMNS)


def test_in_a_narrow_terminal_rich_fits_the_table_to_its_width():
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, width=40, color_system="standard").print(table(ROWS, COLUMNS))
    lines = buffer.getvalue().splitlines()
    assert "\x1b[1m" in lines[0]  # the header in bold
    assert max(len(Text.from_ansi(line).plain) for line in lines) <= 40  # cells wrapped to the terminal's width


def test_in_a_terminal_wide_enough_the_table_is_the_same_with_its_header_in_bold():
    buffer = io.StringIO()
    Console(file=buffer, force_terminal=True, width=200, color_system="standard").print(table(ROWS, COLUMNS))
    printed = buffer.getvalue()
    assert printed.startswith("\x1b[1m")  # the header in bold
    assert "".join(line.rstrip() + "\n" for line in Text.from_ansi(printed).plain.splitlines()) == \
        _rich_layout(ROWS, COLUMNS)
