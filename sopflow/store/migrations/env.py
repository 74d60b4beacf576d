"""Alembic's environment for the store: online only, on the connection `sopflow.store.schema_version` passes in
(config.attributes["connection"], already in the transaction that holds the migration lock)."""

from __future__ import annotations

from alembic import context

from sopflow.store.models import Base
from sopflow.store.schema_version import VERSION_TABLE

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, version_table=VERSION_TABLE,
                  render_as_batch=connection.dialect.name == "sqlite")  # SQLite alters most things by copying a table
with context.begin_transaction():
    context.run_migrations()
