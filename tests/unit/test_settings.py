"""Settings read from the environment: bad values are refused with the variable's name and a fix."""

from __future__ import annotations

import pytest

from sopflow import settings


@pytest.mark.parametrize("raw", ["0", "65", "-1", "two", "1.5", " 2"])
def test_intake_workers_out_of_range_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("SOPFLOW_INTAKE_WORKERS", raw)
    with pytest.raises(ValueError, match=r"SOPFLOW_INTAKE_WORKERS=.*must be a whole number from 1 to 64"):
        settings.intake_workers()


def test_intake_workers_default_and_set(monkeypatch):
    monkeypatch.delenv("SOPFLOW_INTAKE_WORKERS", raising=False)
    assert settings.intake_workers() == 2
    monkeypatch.setenv("SOPFLOW_INTAKE_WORKERS", "3")
    assert settings.intake_workers() == 3


@pytest.mark.parametrize("raw, reason", [("soon", "is not a number of seconds"), ("0", "must be between 0 and 600"),
                                         ("601", "must be between 0 and 600")])
def test_intake_read_timeout_bad_values_are_refused_by_name(monkeypatch, raw, reason):
    monkeypatch.setenv("SOPFLOW_INTAKE_READ_TIMEOUT", raw)
    with pytest.raises(ValueError, match=f"SOPFLOW_INTAKE_READ_TIMEOUT=.*{reason}"):
        settings.intake_read_timeout()
