"""Fixtures for every test: an isolated sopflow home and store. No autouse harness here."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.postgres import new_database

pytest_plugins = ["tests.server_fixture"]  # `sopflow_up`: started only by the tests that ask for it


@pytest.fixture
def sopflow_home(tmp_path, monkeypatch):
    """A fresh SOPFLOW_HOME with its default SQLite store."""
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("SOPFLOW_DATABASE_URL", raising=False)
    return tmp_path / "home"


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL database of its own for this test session, dropped afterwards."""
    with new_database("sopflow_test") as url:
        yield url.replace("postgresql://", "postgresql+psycopg://")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path) -> str:
    """The store on SQLite and on PostgreSQL: each store test runs on both."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    base = request.getfixturevalue("postgres_url")
    from sqlalchemy import text

    from sopflow.store.db import engine
    from sopflow.store.models import Base

    with engine(base).begin() as connection:  # a clean schema for each test
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(text(f"DELETE FROM {table.name}"))
    return base
