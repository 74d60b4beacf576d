"""Engine and sessions for the store: a new store is made at the current schema, an older one is refused."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Engine, Select, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sopflow import settings

T = TypeVar("T")
WAL_ATTEMPTS = 200  # 10 s of waiting for another connection's switch to WAL
_MAKING = threading.Lock()  # one thread makes an engine (and the schema) while others wait


@lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    """The engine for `url`, once its schema is the one this sopflow needs (`schema_version.check`)."""
    from sopflow.store.schema_version import check  # (it imports this module)

    made = new_engine(url)
    try:
        check(made)
    except BaseException:
        made.dispose()
        raise
    return made


def new_engine(url: str) -> Engine:
    """An engine for `url` whose schema is not checked; errors never print statement parameters (they hold leads'
    data)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        # The driver's own transaction handling off, so that every transaction begins IMMEDIATE: it takes
        # the write lock up front (waiting up to busy_timeout) instead of failing with "database is locked"
        # when it first writes after another process wrote (SQLite cannot upgrade a stale read in WAL mode).
        engine = create_engine(url, connect_args={"timeout": 30, "isolation_level": None}, hide_parameters=True)
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", lambda connection: connection.exec_driver_sql("BEGIN IMMEDIATE"))
    else:
        engine = create_engine(url, pool_pre_ping=True, hide_parameters=True)
    return engine


def _sqlite_pragmas(connection: Any, _record: Any) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Switching to WAL takes an exclusive lock and SQLite answers "database is locked" at once, without
    # waiting, while another connection is busy: switch only once, on a database not in WAL mode yet, and
    # wait for the lock here when several connections open a new database at once.
    for attempt in range(WAL_ATTEMPTS):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                raise
            time.sleep(0.05)
    cursor.close()


def engine(url: str | None = None) -> Engine:
    """The engine for `url` (default: the configured store); made once per process, even by threads at once."""
    with _MAKING:
        return _engine(url or settings.database_url())


def get_or_create(session: Session, query: Select[tuple[T]], make: Callable[[], T]) -> T:
    """The row `query` finds, else a new one from `make()`; a concurrent insert of the same row wins."""
    found = session.scalar(query)
    if found is not None:
        return found
    try:
        with session.begin_nested():
            created = make()
            session.add(created)
    except IntegrityError:  # created meanwhile by another transaction: take that one
        return session.scalars(query).one()
    return created


@contextmanager
def transaction(url: str | None = None) -> Iterator[Session]:
    """A session in one transaction: committed on success, rolled back on error."""
    with Session(engine(url), expire_on_commit=False) as session, session.begin():
        yield session
