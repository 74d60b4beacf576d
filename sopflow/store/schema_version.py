"""The store's schema revision: sopflow's Alembic migrations (`migrations/`), run in code, one process at a time.

A new empty store is made at HEAD on first use; a store at HEAD is used; one at an older revision is refused until
`sopflow db upgrade` (or `sopflow up`) brings it to HEAD. A store 0.1.0 made (its tables, no version table) is at
BASELINE. Alembic is imported only to migrate or to explain a refusal: opening a store at HEAD reads one row.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import URL, Connection, Engine, inspect, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, OperationalError

from sopflow.store.db import new_engine

if TYPE_CHECKING:
    from alembic.config import Config

HEAD = "0002"  # the newest revision in migrations/versions (a test checks that Alembic agrees)
BASELINE = "0001"  # release 0.1.0's schema, which its create_all made
MIGRATIONS = Path(__file__).with_name("migrations")
VERSION_TABLE = "sopflow_schema_version"  # not Alembic's default name, which Prefect's server uses in its database
LOCK_KEY = 0x50F_F10E  # pg_advisory_xact_lock: one process at a time reads and migrates a PostgreSQL store's schema


class Upgrade(NamedTuple):
    """What `upgrade` did: the store (its URL without password), its revision before (None: empty) and after."""

    store: str
    before: str | None
    after: str

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def __str__(self) -> str:
        if self.before is None:
            return f"store {self.store} created at {self.after}"
        if not self.changed:
            return f"store {self.store} is at {self.after} (current)"
        return f"store {self.store} upgraded from {self.before} to {self.after}"


def shown(url: str | URL) -> str:
    """The URL as people may see it: never its password."""
    return make_url(url).render_as_string(hide_password=True)


def revision(connection: Connection) -> str | None:
    """The store's revision: BASELINE for one 0.1.0 made (its tables, no version table), None for an empty one."""
    tables = inspect(connection)
    if tables.has_table(VERSION_TABLE):
        return connection.scalar(text(f"SELECT version_num FROM {VERSION_TABLE}"))
    return BASELINE if tables.has_table("sop_runs") else None


def current(url: str) -> str | None:
    """The revision of the store at `url` (None: an empty database, or no SQLite file yet: none is made)."""
    from sopflow.versioning import store_exists

    with _opened(url) as engine:
        if not store_exists(url):
            return None
        with engine.connect() as connection:
            return revision(connection)


def upgrade(url: str) -> Upgrade:
    """Bring the store at `url` to HEAD: an empty one is made, one 0.1.0 made is stamped BASELINE and upgraded."""
    with _opened(url) as engine:
        with _locked(engine) as connection:
            before = revision(connection)
            if before != HEAD:
                _migrate(connection, before)
        return Upgrade(shown(url), before, HEAD)


@contextmanager
def _opened(url: str) -> Iterator[Engine]:
    """An engine for `url`, disposed of on exit; a store that cannot be opened is a RuntimeError in one sentence
    (the URL without its password), not the driver's traceback."""
    try:
        engine = new_engine(url)
    except (ArgumentError, ImportError) as exc:  # not a URL, or a driver that is not installed (postgresql://)
        raise RuntimeError(f"SOPFLOW_DATABASE_URL cannot be used ({type(exc).__name__}: {exc}); set it to e.g. "
                           "postgresql+psycopg://user@host/db or sqlite:////path/sopflow.db") from None
    try:
        yield engine
    except OperationalError as exc:  # the database is not there, or refuses us: say so, not how the driver failed
        reason = str(exc.orig or exc).strip().splitlines()[0]
        raise RuntimeError(f"cannot open the store at {shown(url)} ({reason}); check SOPFLOW_DATABASE_URL") from None
    finally:
        engine.dispose()


def check(engine: Engine) -> None:
    """Make the store of `engine` at HEAD if it is empty, use it at HEAD, else refuse it (RuntimeError)."""
    if _at_head(engine):
        return
    with _locked(engine) as connection:  # read again: another process may have made it meanwhile
        found = revision(connection)
        if found is None:
            _migrate(connection, None)
        elif found != HEAD:
            raise RuntimeError(_refusal(connection, found))


def _at_head(engine: Engine) -> bool:
    """Whether the store is at HEAD, read outside any transaction: on SQLite that takes no write lock (every
    transaction begins IMMEDIATE there), so processes starting in their dozens do not queue for it to look."""
    with engine.connect() as connection:  # connecting fails as SQLAlchemy's OperationalError, as everywhere
        cursor = connection.connection.cursor()  # the driver's own: SQLAlchemy begins no transaction for it
        try:
            cursor.execute(f"SELECT version_num FROM {VERSION_TABLE}")
        except engine.dialect.dbapi.Error:  # no version table: an empty or a 0.1.0 store, looked at under the lock
            return False
        return [row[0] for row in cursor.fetchall()] == [HEAD]


def config(connection: Connection) -> Config:
    """Alembic's configuration for sopflow's migrations on `connection` (no alembic.ini): for `alembic.command`."""
    from alembic.config import Config

    made = Config()
    made.set_main_option("script_location", str(MIGRATIONS))
    made.attributes["connection"] = connection
    return made


@contextmanager
def _locked(engine: Engine) -> Iterator[Connection]:
    """A transaction that no other process reading or migrating the schema runs beside, until it ends: on SQLite it
    began IMMEDIATE (db.py), holding the write lock; on PostgreSQL it holds an advisory lock."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
        yield connection


def _known(found: str) -> bool:
    from alembic.script import ScriptDirectory

    return found in {script.revision for script in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}


def _refusal(connection: Connection, found: str) -> str:
    store = shown(connection.engine.url)
    if _known(found):
        return (f"the store at {store} is at schema {found}, this sopflow needs {HEAD}: run `sopflow db upgrade` "
                "(or `sopflow up`, which upgrades)")
    return (f"the store at {store} is at schema {found}, which this sopflow (schema {HEAD}) does not know: "
            "use the sopflow that upgraded it, or a newer one")


def _migrate(connection: Connection, found: str | None) -> None:
    """Bring the store on `connection` from `found` to HEAD, in the transaction the connection is in."""
    from alembic import command

    if found is not None and not _known(found):
        raise RuntimeError(_refusal(connection, found))
    on_store = config(connection)
    if found == BASELINE:
        command.stamp(on_store, BASELINE)  # a store 0.1.0 made has no version table yet
    command.upgrade(on_store, HEAD)
