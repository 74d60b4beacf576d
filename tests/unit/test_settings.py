"""Settings read from the environment: bad values are refused with the variable's name and a fix."""

from __future__ import annotations

import pytest

from sopflow import settings
from tests.support import run_cli


WHOLE_NUMBERS = [("SOPFLOW_INTAKE_WORKERS", settings.intake_workers, 64, 2),
                 ("SOPFLOW_FLOW_RUN_SLOTS", settings.flow_run_slots, 256, 4)]


@pytest.mark.parametrize("name, read, most, default", WHOLE_NUMBERS)
@pytest.mark.parametrize("raw", ["0", "too-many", "-1", "two", "1.5", " 2"])
def test_whole_number_settings_out_of_range_are_refused_by_name(monkeypatch, name, read, most, default, raw):
    monkeypatch.setenv(name, str(most + 1) if raw == "too-many" else raw)
    with pytest.raises(ValueError, match=rf"{name}=.*must be a whole number from 1 to {most}; set it to e.g. {default}"):
        read()


@pytest.mark.parametrize("name, read, most, default", WHOLE_NUMBERS)
def test_whole_number_settings_default_and_set(monkeypatch, name, read, most, default):
    monkeypatch.delenv(name, raising=False)
    assert read() == default
    monkeypatch.setenv(name, "3")
    assert read() == 3


@pytest.mark.parametrize("raw, reason", [("soon", "is not a number of seconds"), ("0", "must be between 0 and 600"),
                                         ("601", "must be between 0 and 600")])
def test_intake_read_timeout_bad_values_are_refused_by_name(monkeypatch, raw, reason):
    monkeypatch.setenv("SOPFLOW_INTAKE_READ_TIMEOUT", raw)
    with pytest.raises(ValueError, match=f"SOPFLOW_INTAKE_READ_TIMEOUT=.*{reason}"):
        settings.intake_read_timeout()


def test_sopflow_up_refuses_a_bad_setting_in_one_line_before_starting_anything(tmp_path):
    done = run_cli({"SOPFLOW_HOME": str(tmp_path / "home"), "SOPFLOW_FLOW_RUN_SLOTS": "zero"}, "up", "--port", "1",
                   check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ("sopflow up: SOPFLOW_FLOW_RUN_SLOTS='zero' must be a whole number from 1 to 256; "
                                   "set it to e.g. 4")
    assert not (tmp_path / "home").exists()  # no server, no store


@pytest.mark.parametrize("raw, driven", [
    ("postgresql://prefect:s3cret@db:5432/prefect", "postgresql+asyncpg://prefect:s3cret@db:5432/prefect"),
    ("postgres://prefect@db/prefect", "postgresql+asyncpg://prefect@db/prefect"),
    ("postgresql+psycopg://prefect@db/prefect", "postgresql+asyncpg://prefect@db/prefect"),
])
def test_prefect_database_url_is_given_the_async_driver_prefects_server_needs(monkeypatch, raw, driven):
    monkeypatch.setenv("SOPFLOW_PREFECT_DATABASE_URL", raw)
    assert settings.prefect_database_url() == driven


def test_prefect_database_url_unset_means_sqlite_and_other_databases_are_refused_without_the_password(
        tmp_path, monkeypatch):
    monkeypatch.delenv("SOPFLOW_PREFECT_DATABASE_URL", raising=False)
    assert settings.prefect_database_url() is None
    env = {"SOPFLOW_HOME": str(tmp_path / "home")}
    done = run_cli({**env, "SOPFLOW_PREFECT_DATABASE_URL": "mysql://root:s3cret@db/prefect"}, "up", "--port", "1",
                   check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == ("sopflow up: SOPFLOW_PREFECT_DATABASE_URL starts with mysql://; Prefect's server "
                                   "runs on PostgreSQL (postgresql://user:password@host:5432/db) or, when unset, on "
                                   "SQLite")
    assert not (tmp_path / "home").exists()
    done = run_cli({**env, "SOPFLOW_PREFECT_DATABASE_URL": "s3cret"}, "up", "--port", "1", check=False)
    assert done.returncode == 1 and "s3cret" not in done.stderr
    assert "SOPFLOW_PREFECT_DATABASE_URL is not a database URL" in done.stderr
