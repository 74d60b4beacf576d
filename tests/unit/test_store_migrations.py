"""The store's schema migrations, on SQLite and PostgreSQL: head is the models' schema, 0001 is 0.1.0's, a store 0.1.0
made keeps every row through `sopflow db upgrade`, an older store is refused with one sentence, and a new store is
made once however many processes open it at once."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.engine import make_url

from sopflow.cli import main
from sopflow.store import schema_version
from sopflow.store.db import new_engine, transaction
from sopflow.store.models import Approval, Base, Lead, OutboxEmail, SopRun
from tests.postgres import new_database

FIXTURE = Path(__file__).parents[1] / "fixtures" / "store-0.1.0-sqlite.sql"
FILLED = {"leads": 1, "sop_runs": 1, "step_records": 3, "approvals": 1, "outbox": 1}  # the fixture's rows per table
ADDED = {"sop_runs": {"summary_artifact_id"}}  # the columns 0002 adds
PASSWORD = "s3cret"  # in the PostgreSQL URLs (trust auth ignores it): never printed
HEAD, VERSION_TABLE = schema_version.HEAD, schema_version.VERSION_TABLE
OLD = f"is at schema 0001, this sopflow needs {HEAD}: run `sopflow db upgrade` (or `sopflow up`, which upgrades)"


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_url(request, tmp_path) -> Iterator[str]:
    """An empty database of this test's own (`store_url`'s PostgreSQL database is shared and keeps its tables)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    with new_database("sopflow_migrations") as url:
        yield url.replace("postgresql://postgres@", f"postgresql+psycopg://postgres:{PASSWORD}@")


def migrate(url: str, target: str) -> None:
    """Alembic's upgrade to `target` on the database at `url`: how these tests make stores of older revisions."""
    engine = new_engine(url)
    with engine.begin() as connection:
        command.upgrade(schema_version.config(connection), target)
    engine.dispose()


def differences(url: str) -> list[Any]:
    """What Alembic's autogenerate finds between the database at `url` and the models (types and defaults too)."""
    engine = new_engine(url)
    with engine.connect() as connection:
        found = compare_metadata(MigrationContext.configure(connection, opts={"compare_server_default": True,
                                                                            "version_table": VERSION_TABLE}),
                                 Base.metadata)
    engine.dispose()
    return found


def load_fixture(path: Path) -> Path:
    with sqlite3.connect(path) as db:
        db.executescript(FIXTURE.read_text())
    return path


def sqlite_schema(path: Path) -> dict[tuple[str, str], str]:
    """The CREATE statements of a SQLite database, but Alembic's version table's."""
    with sqlite3.connect(path) as db:
        return {(kind, name): sql for kind, name, sql in db.execute("SELECT type, name, sql FROM sqlite_master")
                if VERSION_TABLE not in name}


def rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """The fixture's tables in 0.1.0's columns, as the models read them (aware datetimes, dicts, booleans)."""
    engine = new_engine(url)
    with engine.connect() as connection:
        found = {}
        for name in FILLED:
            table = Base.metadata.tables[name]
            columns = [column for column in table.c if column.name not in ADDED.get(name, set())]
            query = select(*columns).order_by(*table.primary_key.columns)
            found[name] = [dict(row._mapping) for row in connection.execute(query)]
    engine.dispose()
    return found


@pytest.fixture
def store_0_1_0(empty_url, tmp_path) -> str:
    """The database at `empty_url` as 0.1.0 left it: its schema, no version table, the fixture's rows."""
    if empty_url.startswith("sqlite"):
        load_fixture(Path(make_url(empty_url).database))
        return empty_url
    saved = rows(f"sqlite:///{load_fixture(tmp_path / 'fixture.db')}")
    migrate(empty_url, "0001")
    engine = new_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE {VERSION_TABLE}"))
        for name, found in saved.items():
            connection.execute(insert(Base.metadata.tables[name]), found)
    engine.dispose()
    return empty_url


def cli(capsys, monkeypatch, url: str, *args: str) -> tuple[int, str, str]:
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    code = main(list(args))
    out, err = capsys.readouterr()
    assert PASSWORD not in out + err
    return code, out, err


def test_head_is_the_newest_migration():
    assert ScriptDirectory(str(schema_version.MIGRATIONS)).get_current_head() == HEAD


def test_a_new_store_is_made_at_head_with_the_models_schema(empty_url):
    assert schema_version.upgrade(empty_url) == (schema_version.shown(empty_url), None, HEAD)
    assert differences(empty_url) == []  # a change to models.py needs a migration
    assert schema_version.current(empty_url) == HEAD


def test_0001_is_the_schema_0_1_0_made_to_the_letter(tmp_path):
    migrate(f"sqlite:///{tmp_path / 'migrated.db'}", "0001")
    assert sqlite_schema(tmp_path / "migrated.db") == sqlite_schema(load_fixture(tmp_path / "legacy.db"))


def test_0001_lacks_only_what_0002_adds(empty_url):
    migrate(empty_url, "0001")
    assert [(kind, table, column.name) for kind, _, table, column in differences(empty_url)] == [
        ("add_column", "sop_runs", "summary_artifact_id")]


def test_db_upgrade_keeps_every_row_of_a_store_0_1_0_made(store_0_1_0, sopflow_home, monkeypatch, capsys):
    before = rows(store_0_1_0)
    assert {name: len(found) for name, found in before.items()} == FILLED
    store = schema_version.shown(store_0_1_0)
    assert cli(capsys, monkeypatch, store_0_1_0, "db", "current") == (
        0, f"store {store} is at 0001; this sopflow needs {HEAD}: run `sopflow db upgrade`\n", "")
    assert cli(capsys, monkeypatch, store_0_1_0, "db", "upgrade") == (
        0, f"store {store} upgraded from 0001 to {HEAD}\n", "")
    assert rows(store_0_1_0) == before
    with transaction(store_0_1_0) as session:
        run = session.scalars(select(SopRun)).one()
        assert (run.summary_artifact_id, run.state, run.ended_at) == (
            None, "completed", datetime(2026, 11, 19, 16, 40, tzinfo=timezone.utc))
        lead = session.scalars(select(Lead)).one()
        assert (lead.email, lead.fields, lead.do_not_contact) == (
            "dana.whitfield@northwind-logistics.example", {"region": "EMEA", "crm_id": "NW-10442"}, False)
        assert session.scalars(select(Approval.accepted)).one() is True
        assert session.scalars(select(OutboxEmail.headers)).one() == {
            "List-Unsubscribe": "<https://sales.example/unsubscribe/abc>"}
    assert cli(capsys, monkeypatch, store_0_1_0, "db", "current") == (0, f"store {store} is at {HEAD} (current)\n", "")
    assert differences(store_0_1_0) == []


def test_downgrade_to_0001_keeps_the_rows(store_0_1_0):
    before = rows(store_0_1_0)
    schema_version.upgrade(store_0_1_0)
    engine = new_engine(store_0_1_0)
    with engine.begin() as connection:
        command.downgrade(schema_version.config(connection), "0001")
    with engine.connect() as connection:
        assert "summary_artifact_id" not in {column["name"] for column in inspect(connection).get_columns("sop_runs")}
    engine.dispose()
    assert rows(store_0_1_0) == before
    assert schema_version.upgrade(store_0_1_0).changed


def test_a_store_at_0001_is_refused_until_db_upgrade(empty_url, sopflow_home, monkeypatch, capsys):
    migrate(empty_url, "0001")
    store = schema_version.shown(empty_url)
    assert cli(capsys, monkeypatch, empty_url, "leads") == (1, "", f"sopflow leads: the store at {store} {OLD}\n")
    assert cli(capsys, monkeypatch, empty_url, "db", "upgrade") == (
        0, f"store {store} upgraded from 0001 to {HEAD}\n", "")
    assert cli(capsys, monkeypatch, empty_url, "db", "upgrade") == (0, f"store {store} is at {HEAD} (current)\n", "")
    code, out, _ = cli(capsys, monkeypatch, empty_url, "db", "upgrade", "--json")
    assert (code, out) == (0, f'{{\n  "store": "{store}",\n  "before": "{HEAD}",\n  "after": "{HEAD}",\n'
                              f'  "upgraded": false\n}}\n')
    code, out, _ = cli(capsys, monkeypatch, empty_url, "db", "current", "--json")
    assert (code, out) == (0, f'{{\n  "store": "{store}",\n  "revision": "{HEAD}",\n  "head": "{HEAD}"\n}}\n')
    assert cli(capsys, monkeypatch, empty_url, "leads") == (0, "no leads yet\n", "")


def test_sopflow_up_upgrades_the_store_before_anything_starts(tmp_path, sopflow_home, monkeypatch):
    from deployments.up import run_up
    from sopflow.errors import SopInvalid

    url = f"sqlite:///{load_fixture(tmp_path / 'legacy.db')}"
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", url)
    monkeypatch.setenv("SOPFLOW_SOP_DIR", str(tmp_path / "no-sops"))  # `up` stops at loading the SOPs, next
    said: list[str] = []
    for _ in range(2):  # the second time there is nothing to upgrade, and nothing to say
        with pytest.raises(SopInvalid):
            run_up(0, 0, say=said.append)
    assert said == [f"store {url} upgraded from 0001 to {HEAD}"]


def test_a_store_of_a_newer_sopflow_is_refused(empty_url, sopflow_home, monkeypatch, capsys):
    schema_version.upgrade(empty_url)
    engine = new_engine(empty_url)
    with engine.begin() as connection:
        connection.execute(text(f"UPDATE {VERSION_TABLE} SET version_num = '0999'"))
    engine.dispose()
    store = schema_version.shown(empty_url)
    newer = f"the store at {store} is at schema 0999, which this sopflow (schema {HEAD}) does not know"
    for command_words in (["leads"], ["db", "upgrade"]):
        code, out, err = cli(capsys, monkeypatch, empty_url, *command_words)
        assert (code, out) == (1, "") and err.startswith(f"sopflow {' '.join(command_words)}: {newer}: ")


def test_the_revision_is_read_again_under_the_lock(empty_url, monkeypatch):
    """Between this process's first look (not at head) and its lock, an older sopflow made the store: refused, not
    upgraded behind its back."""
    migrate(empty_url, "0001")
    looked = []
    monkeypatch.setattr(schema_version, "_at_head", lambda engine: looked.append(engine) or False)
    engine = new_engine(empty_url)
    with pytest.raises(RuntimeError, match=f"is at schema 0001, this sopflow needs {HEAD}"):
        schema_version.check(engine)
    engine.dispose()
    assert looked and schema_version.current(empty_url) == "0001"


def test_a_store_at_head_is_checked_without_taking_its_write_lock(tmp_path):
    """Dozens of processes starting at once (a burst of CLI calls, stock flow runs) look at the schema beside a
    writer, never queueing behind it: with the lock held elsewhere, the check still passes at once."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    with transaction(url):  # the store made at head
        pass
    holder = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        engine = new_engine(url)
        schema_version.check(engine)  # taking the lock, it would wait for busy_timeout, then fail "database is locked"
        engine.dispose()
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _open_store(url: str, barrier: Any) -> None:
    barrier.wait()
    with transaction(url) as session:
        session.scalar(select(func.count()).select_from(Lead))


def test_processes_opening_a_new_sqlite_store_at_once_make_it_once(tmp_path):
    url, spawn = f"sqlite:///{tmp_path / 'store.db'}", multiprocessing.get_context("spawn")
    barrier = spawn.Barrier(2)
    processes = [spawn.Process(target=_open_store, args=(url, barrier)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
    assert [process.exitcode for process in processes] == [0, 0]  # the second to migrate would fail: tables exist
    with sqlite3.connect(tmp_path / "store.db") as db:
        assert db.execute(f"SELECT version_num FROM {VERSION_TABLE}").fetchall() == [(HEAD,)]


def test_an_unreachable_store_is_one_line_without_its_password(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path))
    code, _, err = cli(capsys, monkeypatch, f"postgresql+psycopg://sopflow:{PASSWORD}@127.0.0.1:1/nowhere", "db", "upgrade")
    assert code == 1
    assert err.startswith("sopflow db upgrade: cannot open the store at postgresql+psycopg://sopflow:***@127.0.0.1:1/nowhere (")
    assert err.rstrip().endswith("); check SOPFLOW_DATABASE_URL") and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("url, said", [
    ("not a url", "SOPFLOW_DATABASE_URL cannot be used (ArgumentError: "),
    ("postgresql://sopflow:s3cret@127.0.0.1/db", "SOPFLOW_DATABASE_URL cannot be used (ModuleNotFoundError: "),
])
@pytest.mark.parametrize("command", ["upgrade", "current"])
def test_a_store_url_that_cannot_be_used_is_one_line(capsys, monkeypatch, tmp_path, url, said, command):
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path))
    code, _, err = cli(capsys, monkeypatch, url, "db", command)
    assert code == 1 and err.startswith(f"sopflow db {command}: {said}") and len(err.strip().splitlines()) == 1
