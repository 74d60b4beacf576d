"""Talking to Prefect from sopflow: the configured server and its login, never an ephemeral server."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sopflow import settings
from sopflow.services.api_ca_file import plain_http_ca_setting


class PrefectUnavailable(RuntimeError):
    """No Prefect server is known to sopflow."""


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use the Prefect server sopflow knows of, with its login, for the duration of the block; yield its API URL.

    Prefect is imported here, not with this module: the intake imports it only when it first talks to Prefect.
    """
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

    url = settings.prefect_api_url()
    if url is None:
        raise PrefectUnavailable("no Prefect server is running for sopflow; start `sopflow up` or set PREFECT_API_URL")
    updates: dict[Any, str] = {PREFECT_API_URL: url}
    auth = settings.prefect_auth_string()
    if auth:
        updates[PREFECT_API_AUTH_STRING] = auth
    with temporary_settings(updates={**updates, **plain_http_ca_setting(url)}):
        yield url


def require_prefect(url: str, timeout: float = 10.0) -> None:
    """Raise PrefectUnavailable, in one sentence, unless the Prefect server at `url` answers and takes sopflow's
    login (`settings.prefect_auth_string()`; its health check alone needs none)."""
    import httpx

    login = settings.prefect_auth_string()
    user, _, password = (login or "").partition(":")
    try:
        health = httpx.get(f"{url.rstrip('/')}/health", timeout=timeout)
        hello = httpx.get(f"{url.rstrip('/')}/hello", timeout=timeout,
                          auth=httpx.BasicAuth(user, password) if login else None)
    except httpx.HTTPError as exc:
        raise PrefectUnavailable(f"no Prefect server answers at {url} ({type(exc).__name__}); start it, or unset "
                                 "PREFECT_API_URL so that `sopflow up` starts its own") from None
    if health.status_code != 200:
        raise PrefectUnavailable(f"the Prefect server at {url} answered its health check with HTTP "
                                 f"{health.status_code}; check its log")
    if hello.status_code == 401:
        raise PrefectUnavailable(f"the Prefect server at {url} refused sopflow's login (HTTP 401); set "
                                 "PREFECT_API_AUTH_STRING to its user:password")
