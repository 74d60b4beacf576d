"""`sopflow leads import`: a CSV file's leads checked row by row, stored in batches, each claiming its SOP runs once."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from sqlalchemy import func, select

from sopflow import lead_import
from sopflow.catalog import load_all, sops_started_by
from sopflow.cli import main
from sopflow.lead_import import UnusableFile, import_leads
from sopflow.leads import LeadIn
from sopflow.settings import PROJECT_ROOT
from sopflow.store.db import transaction
from sopflow.store.leads import store_leads
from sopflow.store.models import Lead, SopRun

SOPS = sops_started_by("new_lead", sops=load_all(PROJECT_ROOT / "sop_definitions"))
KNOWN = "known: email, name, company, title, employees, industry, source, do_not_contact"
THEN = "; the dispatcher of `sopflow up` starts them (if `sopflow up` is not running, they start when it does)"


def csv_file(tmp_path: Path, content: str | bytes, name: str = "leads.csv") -> Path:
    path = tmp_path / name
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8", newline="")
    else:
        path.write_bytes(content)
    return path


def counts(url: str | None = None) -> tuple[int, int]:
    """(leads, SOP runs) in the store."""
    with transaction(url) as session:
        return (session.scalar(select(func.count()).select_from(Lead)),
                session.scalar(select(func.count()).select_from(SopRun)))


def lead(email: str, url: str | None = None) -> Lead:
    with transaction(url) as session:
        return session.scalars(select(Lead).where(Lead.email == email)).one()


def texts(summary: lead_import.Summary, path: Path) -> list[str]:
    return [problem.text(path.name) for problem in summary.problems]


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


# Columns: found by header name, whatever its case, spacing, `-` or `_`.

@pytest.mark.parametrize("email, employees, dnc", [
    ("Email", "Employees", "Do Not Contact"), ("EMAIL", "EMPLOYEES", "do-not-contact"),
    (" email ", " employees", "do_not_contact"), ("E-mail", "employees ", "DoNotContact"),
    ("Email Address", "Employees", "DO_NOT_CONTACT"),
])
def test_columns_are_found_by_header_name(tmp_path, sqlite_url, email, employees, dnc):
    path = csv_file(tmp_path, f"Name,{email},{employees},{dnc}\nAna Diaz,Ana@Example.com,40,yes\n")
    summary = import_leads(path, SOPS, url=sqlite_url)
    assert (summary.imported, summary.problems) == (1, [])
    stored = lead("ana@example.com", sqlite_url)
    assert (stored.name, stored.employees, stored.do_not_contact) == ("Ana Diaz", 40, True)


def test_an_unknown_column_is_reported_once_and_ignored(tmp_path, sqlite_url):
    path = csv_file(tmp_path, "email,Phone,,name\na@example.com,555,x,Ann\nb@example.com,556,y,Bo\n")
    summary = import_leads(path, SOPS, url=sqlite_url)
    assert texts(summary, path) == [
        f"leads.csv:1: column Phone is not a lead field, so it is ignored; {KNOWN}",
        f"leads.csv:1: column 3 (no name) is not a lead field, so it is ignored; {KNOWN}"]
    assert (summary.imported, summary.rejected, summary.exit_code) == (2, 0, 0)
    assert lead("b@example.com", sqlite_url).name == "Bo"


@pytest.mark.parametrize("header, message", [
    ("Email,name,e-mail", "leads.csv:1: columns Email and e-mail both hold the email; keep one"),
    ("name,Name", "leads.csv:1: columns name and Name both hold the name; keep one"),
    ("name,company", f"leads.csv:1: no column holds the email; name one email ({KNOWN})"),
])
def test_a_header_that_cannot_be_used_is_one_sentence(tmp_path, sqlite_url, header, message):
    path = csv_file(tmp_path, f"{header}\na@example.com,x,y\n")
    with pytest.raises(UnusableFile) as refused:
        import_leads(path, SOPS, url=sqlite_url)
    assert str(refused.value) == message.replace("leads.csv", str(path))


# Bad rows: each reported as FILE:LINE: column COLUMN: reason; the good rows are imported all the same.

def test_every_bad_row_is_reported_where_it_stands_and_the_good_rows_are_imported(tmp_path, store_url):
    rows = [
        "Email,Name,Employees,Do Not Contact",  # 1
        "good1@example.com,Ann,12,no",  # 2
        "not-an-email,Bo,5,no",  # 3
        ",Cy,5,no",  # 4: no email
        "cy@example.com,Cy,lots,no",  # 5
        "di@example.com,Di,-3,maybe",  # 6: two problems, one row
        f"ed@example.com,{'E' * 201},1,no",  # 7
        "fa@example.com,F\x00a,1,no",  # 8
        'ga@example.com,"Ga',  # 9-10: a quoted cell over two lines
        'Ga",1,no',
        "good2@example.com,\"Hal, Jr.\",7,true",  # 11
        "ha@example.com,Ha,1,no,extra",  # 12
        "ia@example.com,Ia",  # 13
        "",  # 14: blank lines and empty rows are no rows
        ",,,",  # 15
        "good3@example.com,=HYPERLINK(\"http://evil\"),+1,0",  # 16: a formula is text (and +1 a number)
    ]
    path = csv_file(tmp_path, "\r\n".join(rows) + "\r\n")
    summary = import_leads(path, SOPS, url=store_url)
    assert texts(summary, path) == [
        "leads.csv:3: column Email: not an email address",
        "leads.csv:4: column Email: is empty; every lead needs an email",
        "leads.csv:5: column Employees: Input should be a valid integer, unable to parse string as an integer",
        "leads.csv:6: column Employees: Input should be greater than or equal to 0",
        "leads.csv:6: column Do Not Contact: Input should be a valid boolean, unable to interpret input",
        "leads.csv:7: column Name: String should have at most 200 characters",
        "leads.csv:8: column Name: contains a control or invisible character (U+0000 at position 2); "
        "remove it",
        "leads.csv:9: column Name: contains a control or invisible character (U+000D at position 3); "
        "remove it",
        "leads.csv:12: the row has 5 cells but the header has 4; check its commas and quotes",
        "leads.csv:13: the row has 2 cells but the header has 4; check its commas and quotes",
    ]
    assert (summary.rows, summary.imported, summary.rejected, summary.claimed) == (12, 3, 9, 3 * len(SOPS))
    assert summary.exit_code == 1
    assert counts(store_url) == (3, 3 * len(SOPS))
    assert lead("good2@example.com", store_url).do_not_contact is True
    formula = lead("good3@example.com", store_url)
    assert (formula.name, formula.employees, formula.do_not_contact) == ('=HYPERLINK("http://evil")', 1, False)
    assert not any("example.com" in text or "not-an-email" in text for text in texts(summary, path))


def test_huge_cells_and_lines_are_reported_and_reading_goes_on(tmp_path, sqlite_url):
    big_cell = "\n".join(["y" * 60_000] * 3)  # each line fits, the cell does not (csv.field_size_limit)
    path = csv_file(tmp_path, f'email,name\na@example.com,"{big_cell}"\nb@example.com,Bo\n'
                              f"c@example.com,{'z' * 10_000_000}\nd@example.com,Di\n")
    summary = import_leads(path, SOPS, url=sqlite_url)
    assert texts(summary, path) == [
        "leads.csv:2: the row cannot be read as CSV (field larger than field limit (131072))",
        "leads.csv:6: line 6 is longer than 65,536 characters, which no lead is"]
    assert (summary.imported, summary.rejected) == (2, 2)
    assert {lead("b@example.com", sqlite_url).name, lead("d@example.com", sqlite_url).name} == {"Bo", "Di"}


# Duplicates: in the file (the first row wins) and against the store.

def test_duplicates_in_the_file_and_in_the_store_are_counted_not_imported(tmp_path, store_url):
    store_leads([LeadIn(email="old@example.com", name="Old")], SOPS, store_url)
    path = csv_file(tmp_path, "email,name\nnew@example.com,First\nOLD@example.com,Again\n NEW@Example.com ,Second\n")
    summary = import_leads(path, SOPS, url=store_url)
    assert texts(summary, path) == ["leads.csv:4: the email on line 4 was first seen on line 2; skipped"]
    assert (summary.imported, summary.in_file, summary.stored, summary.claimed) == (1, 1, 1, len(SOPS))
    assert summary.exit_code == 0
    assert (lead("new@example.com", store_url).name, lead("old@example.com", store_url).name) == ("First", "Old")
    assert counts(store_url) == (2, 2 * len(SOPS))


def test_importing_the_same_file_again_adds_nothing_and_claims_no_run(tmp_path, store_url):
    path = csv_file(tmp_path, "email\n" + "".join(f"lead{n}@example.com\n" for n in range(30)))
    first = import_leads(path, SOPS, url=store_url)
    assert (first.imported, first.claimed) == (30, 30 * len(SOPS))
    again = import_leads(path, SOPS, url=store_url)
    assert (again.imported, again.stored, again.claimed, again.exit_code) == (0, 30, 0, 0)
    assert counts(store_url) == (30, 30 * len(SOPS))


def test_importing_known_leads_after_an_sop_was_added_says_it_claims_that_sops_runs(tmp_path, store_url):
    path = csv_file(tmp_path, "email\n" + "".join(f"known{n}@example.com\n" for n in range(4)))
    assert import_leads(path, SOPS[:1], url=store_url).claimed == 4
    again = import_leads(path, SOPS[:1] + ["an-sop-added-since"], url=store_url)
    assert (again.imported, again.stored, again.claimed) == (0, 4, 4)  # counted as claimed, as it is
    assert counts(store_url) == (4, 8)


def test_a_dry_run_counts_what_an_import_would_do_and_writes_nothing(tmp_path, store_url):
    store_leads([LeadIn(email="old@example.com")], SOPS, store_url)
    path = csv_file(tmp_path, "email\nold@example.com\na@example.com\nb@example.com\na@example.com\nbad\n")
    dry = import_leads(path, SOPS, dry_run=True, url=store_url)
    assert counts(store_url) == (1, len(SOPS))
    assert (dry.imported, dry.in_file, dry.stored, dry.rejected, dry.claimed) == (2, 1, 1, 1, 2 * len(SOPS))
    assert dry.sentence() == ("dry run, nothing written: would import 2, duplicates 2 (in file 1, already stored 1), "
                              f"rejected 1, would claim {2 * len(SOPS)} SOP runs")
    done = import_leads(path, SOPS, url=store_url)
    assert (done.imported, done.in_file, done.stored, done.rejected, done.claimed) == (2, 1, 1, 1, 2 * len(SOPS))


def test_ten_thousand_rows_make_ten_thousand_leads_with_one_run_per_sop_each(tmp_path, store_url, monkeypatch):
    batches: list[int] = []

    def store(leads, sop_ids, url):
        batches.append(len(leads))
        return store_leads(leads, sop_ids, url)

    monkeypatch.setattr(lead_import, "store_leads", store)
    path = csv_file(tmp_path, "email,name,company,employees\n" + "".join(
        f"lead{n}@example.com,Lead {n},Company {n % 97},{n % 5000}\n" for n in range(10_000)))
    summary = import_leads(path, SOPS, url=store_url)
    assert (summary.imported, summary.claimed, summary.problems) == (10_000, 10_000 * len(SOPS), [])
    assert batches == [500] * 20  # 500 rows per transaction, not one transaction per row nor one for all
    with transaction(store_url) as session:
        assert session.scalar(select(func.count()).select_from(Lead)) == 10_000
        pairs = session.execute(select(SopRun.sop_id, SopRun.lead_id, func.count())
                                .group_by(SopRun.sop_id, SopRun.lead_id)).all()
    assert len(pairs) == 10_000 * len(SOPS) and {n for *_, n in pairs} == {1} and {s for s, *_ in pairs} == set(SOPS)


# The command: exit status 0, 1 or 2, a summary line, problems on stderr, --json; never a traceback.

@pytest.fixture
def home(sopflow_home, monkeypatch):
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(PROJECT_ROOT / "sop_definitions"))
    return sopflow_home


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_command_imports_reports_and_exits_by_what_it_found(tmp_path, home, capsys):
    path = csv_file(tmp_path, "email,name\nann@example.com,Ann\nbo@example.com,Bo\nann@example.com,Ann\n")
    code, out, err = cli(capsys, "leads", "import", str(path))
    assert (code, err) == (0, f"{path}:4: the email on line 4 was first seen on line 2; skipped\n")
    assert out == (f"imported 2, duplicates 1 (in file 1, already stored 0), rejected 0, "
                   f"SOP runs claimed {2 * len(SOPS)}{THEN}\n")
    bad = csv_file(tmp_path, "email,employees\ncy@example.com,3\nbad-address,x\n", "bad.csv")
    code, out, err = cli(capsys, "leads", "import", str(bad))
    assert code == 1 and out.startswith("imported 1, duplicates 0 (in file 0, already stored 0), rejected 1, ")
    assert err.splitlines() == [f"{bad}:3: column email: not an email address",
                                f"{bad}:3: column employees: Input should be a valid integer, unable to parse string "
                                "as an integer"]
    code, out, err = cli(capsys, "leads", "import", str(path))
    assert (code, out) == (0, "imported 0, duplicates 3 (in file 1, already stored 2), rejected 0, "
                              "SOP runs claimed 0\n")
    listed = json.loads(cli(capsys, "leads", "--json")[1])  # `sopflow leads` still lists
    assert {row["email"] for row in listed} == {"ann@example.com", "bo@example.com", "cy@example.com"}


def test_the_command_prints_json_and_a_dry_run_writes_nothing(tmp_path, home, capsys):
    path = csv_file(tmp_path, "email,Phone\nann@example.com,1\nbad,2\n")
    code, out, err = cli(capsys, "leads", "import", str(path), "--dry-run", "--json")
    assert (code, err) == (1, "")
    assert json.loads(out) == {
        "file": str(path), "dry_run": True, "rows": 2, "imported": 1, "duplicates": {"in_file": 0, "already_stored": 0},
        "rejected": 1, "sop_runs_claimed": len(SOPS), "problems": [
            {"line": 1, "kind": "ignored", "column": None,
             "reason": f"column Phone is not a lead field, so it is ignored; {KNOWN}"},
            {"line": 3, "kind": "rejected", "column": "email", "reason": "not an email address"}]}
    assert counts() == (0, 0)
    code, out, _ = cli(capsys, "leads", "import", str(path), "--dry-run")
    assert code == 1 and out.startswith("dry run, nothing written: would import 1, ")
    assert counts() == (0, 0)


@pytest.mark.parametrize("content, message", [pytest.param(*case, id=name) for name, case in {
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "{path} is not UTF-8 text (line 1 holds a byte that is not); "
                                             "save it as CSV UTF-8"),
    "latin-1": ("email\nann@example.com\nbø@example.com\n".encode("latin-1"), "{path} is not UTF-8 text (line 3 holds a byte "
                                                                   "that is not); save it as CSV UTF-8"),
    "utf-16 with bom": ("\ufeffemail\nann@example.com\n".encode("utf-16-le"), "{path} is not UTF-8 text (line 1 holds a byte that is "
                                                           "not); save it as CSV UTF-8"),
    "utf-16 without bom": ("email,name\nann@example.com,Ann\n".encode("utf-16-le"), "{path} has NUL bytes in its header, so it is binary "
                                                              "or UTF-16; save it as CSV UTF-8"),
    "nul bytes": (b"\x00" * 4096, "{path} has NUL bytes in its header, so it is binary or UTF-16; save it as CSV UTF-8"),
    "empty": (b"", "{path} is empty; its first line must name the columns, e.g. email,name,company"),
    "blank lines": (b"\n\r\n \n", "{path} is empty; its first line must name the columns, e.g. email,name,company"),
    "header only": (b"email,name\n", "{path} has a header but no rows; put one lead per line below it"),
    "header and empty rows": (b"email,name\n\n,\n", "{path} has a header but no rows; put one lead per line below it"),
    "10 MB header": (b"e" * 10_000_000 + b"\nann@example.com\n",
                     "{path}:1: the line is longer than 65,536 characters; is it a CSV file?"),
}.items()])
def test_an_unusable_file_is_one_sentence_and_exit_status_2(tmp_path, home, capsys, content, message):
    path = csv_file(tmp_path, content)
    code, out, err = cli(capsys, "leads", "import", str(path))
    assert (code, out, err) == (2, "", f"sopflow leads import: {message.format(path=path)}\n")
    assert counts() == (0, 0)


def test_a_missing_file_or_a_directory_is_one_sentence(tmp_path, home, capsys):
    assert cli(capsys, "leads", "import", str(tmp_path / "nope.csv")) == (
        2, "", f"sopflow leads import: cannot read {tmp_path / 'nope.csv'}: No such file or directory\n")
    assert cli(capsys, "leads", "import", str(tmp_path)) == (
        2, "", f"sopflow leads import: cannot read {tmp_path}: Is a directory\n")


def test_a_bom_is_skipped_and_a_nul_in_a_cell_rejects_only_its_row(tmp_path, home, capsys):
    path = csv_file(tmp_path, "\ufeffEmail,Name\r\nann@example.com,Ann\r\nbo@example.com,B\x00o\r\n".encode())
    code, out, err = cli(capsys, "leads", "import", str(path))
    assert code == 1 and out.startswith("imported 1, ")
    assert err == (f"{path}:3: column Name: contains a control or invisible character "
                   "(U+0000 at position 2); remove it\n")
    assert lead("ann@example.com").name == "Ann"


def test_a_terminal_sees_a_progress_bar_on_stderr(tmp_path, home, capsys, monkeypatch):
    path = csv_file(tmp_path, "email\n" + "".join(f"lead{n}@example.com\n" for n in range(7)))
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, out, err = cli(capsys, "leads", "import", str(path))
    assert code == 0 and out.startswith("imported 7, ")
    assert "lines" in err and "8/8" in err  # lines read of the file's 8 lines (the header too)
