"""Prefect's server transactions on SQLite begun IMMEDIATE (deployments/sqlite_writes.py), on a real database file
through Prefect's own database configuration: a transaction reads, another connection commits a write, then the
transaction writes, as a resume does while a burst of runs is being recorded."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from prefect.server.database.configurations import AioSqliteConfiguration
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from deployments.sqlite_writes import WriteFirstSqlite


def race(config_class: type[AioSqliteConfiguration], path: Path) -> dict[str, object]:
    """What the transaction and the other writer each end with, and the rows in the order they were committed."""
    with sqlite3.connect(path) as setup:
        setup.execute("PRAGMA journal_mode = WAL")
        setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, who TEXT)")
    outcome: dict[str, object] = {}

    def other_writer() -> None:
        connection = sqlite3.connect(path, timeout=20)
        try:
            connection.execute("INSERT INTO t (who) VALUES ('other')")
            connection.commit()
            outcome["other"] = "written"
        except sqlite3.OperationalError as exc:
            outcome["other"] = str(exc)
        finally:
            connection.close()

    async def transaction() -> None:
        config = config_class(connection_url=f"sqlite+aiosqlite:///{path}")
        engine = await config.engine()
        other = threading.Thread(target=other_writer)
        try:
            async with await config.session(engine) as session:
                async with config.begin_transaction(session):
                    await session.execute(text("SELECT count(*) FROM t"))
                    other.start()
                    await asyncio.sleep(0.5)  # the other writer commits now, unless this transaction holds the lock
                    await session.execute(text("INSERT INTO t (who) VALUES ('prefect')"))
            outcome["prefect"] = "written"
        except OperationalError as exc:
            outcome["prefect"] = str(exc.orig)
        finally:
            await asyncio.to_thread(other.join)
            await engine.dispose()

    began = time.monotonic()
    asyncio.run(transaction())
    outcome["seconds"] = time.monotonic() - began
    with sqlite3.connect(path) as check:
        outcome["rows"] = [who for (who,) in check.execute("SELECT who FROM t ORDER BY id")]
    return outcome


def test_begun_deferred_as_prefect_does_the_write_fails_at_once(tmp_path):
    """The hazard with Prefect's own configuration: shows the scenario is real."""
    outcome = race(AioSqliteConfiguration, tmp_path / "prefect.db")
    assert outcome["prefect"] == "database is locked"
    assert outcome["rows"] == ["other"]
    assert outcome["seconds"] < 5  # failed at once, not after a busy timeout


def test_begun_immediate_both_writes_go_through_one_after_the_other(tmp_path):
    outcome = race(WriteFirstSqlite, tmp_path / "prefect.db")
    assert (outcome["prefect"], outcome["other"]) == ("written", "written")
    assert outcome["rows"] == ["prefect", "other"]  # the other writer waited for the transaction to commit


def test_installed_for_sqlite_and_not_for_postgresql(tmp_path):
    from prefect.server.database.dependencies import MODELS_DEPENDENCIES, set_database_config
    from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL, temporary_settings

    from deployments.sqlite_writes import install

    try:
        for url, installed in ((f"sqlite+aiosqlite:///{tmp_path}/prefect.db", True),
                               ("postgresql+asyncpg://prefect@127.0.0.1:5432/prefect", False)):
            set_database_config(None)
            with temporary_settings({PREFECT_API_DATABASE_CONNECTION_URL: url}):
                install()
            assert isinstance(MODELS_DEPENDENCIES["database_config"], WriteFirstSqlite) is installed, url
    finally:
        set_database_config(None)
