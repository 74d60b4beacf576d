"""Talking to Prefect from sopflow: the configured server and its login, never an ephemeral server."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sopflow import settings
from sopflow.memo import remember_last_call
from sopflow.services.api_ca_file import plain_http_ca_setting


class PrefectUnavailable(RuntimeError):
    """No Prefect server is known to sopflow."""


@contextmanager
def prefect_api() -> Iterator[str]:
    """Use the Prefect server sopflow knows of, with its login, for the duration of the block; yield its API URL.

    Prefect is imported here, not with this module: the intake imports it only when it first talks to Prefect.
    """
    from prefect.context import SettingsContext, get_settings_context
    from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL

    url = settings.prefect_api_url()
    if url is None:
        raise PrefectUnavailable("no Prefect server is running for sopflow; start `sopflow up` or set PREFECT_API_URL")
    updates: dict[Any, str] = {PREFECT_API_URL: url}
    auth = settings.prefect_auth_string()
    if auth:
        updates[PREFECT_API_AUTH_STRING] = auth
    updates.update(plain_http_ca_setting(url))
    context = get_settings_context()
    named = tuple(sorted((setting.name, value) for setting, value in updates.items()))
    environment = tuple(sorted(prefect_settings_in(os.environ).items()))  # settings built from it change with it
    with SettingsContext(profile=context.profile, settings=_updated(context.settings, named, environment)):
        yield url


def prefect_settings_in(env: Mapping[str, str]) -> dict[str, str]:
    """The Prefect settings `env` sets (PREFECT_*; the engine's own PREFECT__* variables are not settings)."""
    return {k: v for k, v in env.items() if k.startswith("PREFECT_") and not k.startswith("PREFECT__")}


@remember_last_call
def _updated(base: Any, updates: tuple[tuple[str, str], ...], environment: tuple[tuple[str, str], ...]) -> Any:
    """`base` Prefect settings with `updates` (setting name, value), as `temporary_settings` makes them (with what
    `environment` sets and `base` does not): about 35 ms of CPU each time, so made once while nothing changes."""
    return base.copy_with_update(updates=dict(updates))


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
