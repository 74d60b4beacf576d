"""Flow runs' Prefect clients of a plain-HTTP API load a one-CA file, not certifi's bundle; an HTTPS API, or any
TLS setting of the operator's, is left as configured."""

from __future__ import annotations

import ssl
from pathlib import Path

import certifi
import pytest

from sopflow.services.api_ca_file import plain_http_ca


def test_a_plain_http_api_gets_a_file_of_one_ca_that_a_tls_context_loads(sopflow_home):
    added = plain_http_ca({"PREFECT_API_URL": "http://127.0.0.1:4200/api"})
    path = Path(added["PREFECT_API_SSL_CERT_FILE"])
    assert path.parent == sopflow_home
    assert path.read_text().count("BEGIN CERTIFICATE") == 1
    assert path.read_text() in Path(certifi.where()).read_text()  # one of certifi's CAs, unchanged
    context = ssl.create_default_context(cafile=str(path))  # as Prefect's client builds its context
    assert context.cert_store_stats()["x509_ca"] == 1


@pytest.mark.parametrize("env", [
    {"PREFECT_API_URL": "https://prefect.example.com/api"},
    {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PREFECT_API_SSL_CERT_FILE": "/etc/ssl/our-ca.pem"},
    {"PREFECT_API_URL": "http://127.0.0.1:4200/api", "PREFECT_API_TLS_INSECURE_SKIP_VERIFY": "true"},
    {},
], ids=["https", "own CA file", "skip verify", "no API URL"])
def test_an_https_api_or_an_operators_tls_setting_is_left_alone(sopflow_home, env):
    assert plain_http_ca(env) == {}


def test_sopflows_own_clients_of_a_plain_http_api_load_the_one_ca_file(sopflow_home, monkeypatch):
    """The dispatcher, the worker and each CLI command talk to Prefect inside `prefect_api()`."""
    from prefect.client.orchestration import get_client

    from sopflow.services.connection import prefect_api

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    with prefect_api(), get_client(sync_client=True) as client:
        loaded = client._client._transport._pool._ssl_context.cert_store_stats()["x509_ca"]
    assert loaded == 1


def test_an_operators_tls_setting_keeps_sopflows_own_clients_as_configured(sopflow_home):
    from prefect.settings import PREFECT_API_TLS_INSECURE_SKIP_VERIFY, temporary_settings

    from sopflow.services.api_ca_file import plain_http_ca_setting

    assert plain_http_ca_setting("http://127.0.0.1:9/api")  # nothing set: the one-CA file
    with temporary_settings({PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
        assert plain_http_ca_setting("http://127.0.0.1:9/api") == {}
    assert plain_http_ca_setting("https://prefect.example.com/api") == {}
