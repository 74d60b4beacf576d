"""Talking to Prefect from sopflow's commands: the configured server, never an ephemeral one."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from prefect.settings import PREFECT_API_URL, temporary_settings

from sopflow import settings


class PrefectUnavailable(RuntimeError):
    """No Prefect server is known to sopflow."""


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use the Prefect server sopflow knows of for the duration of the block; yield its API URL."""
    url = settings.prefect_api_url()
    if url is None:
        raise PrefectUnavailable("no Prefect server is running for sopflow; start `sopflow up` or set PREFECT_API_URL")
    with temporary_settings(updates={PREFECT_API_URL: url}):
        yield url
