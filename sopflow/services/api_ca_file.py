"""The CA file sopflow's Prefect clients load when Prefect's API is plain HTTP, where TLS never happens.

Every Prefect API client builds a TLS context from certifi's bundle of about 150 CAs, even for an `http://` API:
25 to 40 ms of CPU each. A flow run's process makes about seven (the engine's, its loop thread's, the log and
event workers', the suspension watcher's), a fifth of a run's own CPU; the dispatcher two per round, on the way
of every new lead; each CLI command one. Pointing `PREFECT_API_SSL_CERT_FILE` at a file of one CA makes each
1 to 2 ms. Only for a plain-HTTP API and only when no CA file or skip-verify is configured: an `https://` API
keeps its verification as configured.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import certifi

from sopflow import settings

BEGIN, END = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
TLS_SETTINGS = ("PREFECT_API_SSL_CERT_FILE", "PREFECT_API_TLS_INSECURE_SKIP_VERIFY")


def plain_http_ca(env: Mapping[str, str]) -> dict[str, str]:
    """The setting to add to a flow run's environment `env` (Prefect's settings included): the one-CA file when
    its API is plain HTTP and nothing about TLS is configured, else nothing."""
    path = _ca_file_for(env.get("PREFECT_API_URL", ""), any(env.get(name) for name in TLS_SETTINGS))
    return {"PREFECT_API_SSL_CERT_FILE": path} if path else {}


def plain_http_ca_setting(url: str) -> dict[Any, str]:
    """The same as an update of this process's Prefect settings (`temporary_settings`), for its clients of the API
    at `url`. Asks which API settings were set rather than serializing them all as the run environment does
    (about 30 ms, and this runs per request); a default, as from SSL_CERT_FILE, is not the operator's setting."""
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, get_current_settings

    configured = get_current_settings().api.model_fields_set & {"ssl_cert_file", "tls_insecure_skip_verify"}
    path = _ca_file_for(url, bool(configured))
    return {PREFECT_API_SSL_CERT_FILE: path} if path else {}


def _ca_file_for(url: str, tls_configured: bool) -> str | None:
    """The one-CA file for a plain-HTTP `url` with no TLS setting of the operator's, else None."""
    return _one_ca_file(settings.home()) if url.startswith("http://") and not tls_configured else None


@lru_cache(maxsize=4)
def _one_ca_file(home: Path) -> str | None:
    """The first CA of certifi's bundle, written (atomically: runs may be reading it) under sopflow's `home`; None
    when it cannot be written to (the runs then load the whole bundle, as Prefect does)."""
    bundle = Path(certifi.where()).read_text()
    first = bundle[bundle.index(BEGIN):bundle.index(END) + len(END)] + "\n"
    path = home / "plain-http-api-ca.pem"
    part = path.with_name(f"{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(first)
        os.replace(part, path)
    except OSError:
        return None
    return str(path)
