"""Prefect's server on SQLite with every transaction it opens to write started as `BEGIN IMMEDIATE`.

Why: Prefect starts most of them `BEGIN DEFERRED` (only a few pass `with_for_update`). Such a transaction reads
first; if another connection commits a write before it writes, SQLite cannot let it write on its old snapshot and
fails it at once with "database is locked" (SQLITE_BUSY_SNAPSHOT; the busy timeout does not apply). Under a burst of
leads Prefect answered 13 of 20 resumes sent as its UI sends them with 503 that way, and some of the dispatcher's
batch creations. Started IMMEDIATE, a transaction takes the write lock first and waits its turn under the busy
timeout instead, as Prefect's own note in `setup_sqlite` advises. Reads outside a transaction are left as they are.

Installed through Prefect's `set_database_config`, in the server's process (deployments/prefect_cli.py).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from prefect.server.database.configurations import AioSqliteConfiguration
from prefect.server.database.dependencies import set_database_config
from prefect.server.utilities.database import get_dialect
from prefect.settings import PREFECT_API_DATABASE_CONNECTION_URL
from sqlalchemy.ext.asyncio import AsyncSession, AsyncSessionTransaction


class WriteFirstSqlite(AioSqliteConfiguration):
    """Prefect's SQLite configuration, its transactions begun IMMEDIATE."""

    @asynccontextmanager
    async def begin_transaction(
        self, session: AsyncSession, with_for_update: bool = False
    ) -> AsyncGenerator[AsyncSessionTransaction, None]:
        async with super().begin_transaction(session, with_for_update=True) as transaction:
            yield transaction


def install() -> None:
    """Make Prefect's server use `WriteFirstSqlite` when its database is SQLite (PostgreSQL is left as it is)."""
    url = PREFECT_API_DATABASE_CONNECTION_URL.value()
    if get_dialect(url).name == "sqlite":
        set_database_config(WriteFirstSqlite(connection_url=url))
