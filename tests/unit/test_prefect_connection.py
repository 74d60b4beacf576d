"""`prefect_api()`: sopflow's server, login and CA file as Prefect settings for the block, made once and made again
as soon as anything they are built from changes."""

from __future__ import annotations

from sopflow.memo import remember_last_call


def test_settings_follow_the_server_the_login_the_environment_and_an_outer_setting(sopflow_home, monkeypatch):
    from prefect.settings import PREFECT_API_REQUEST_TIMEOUT, get_current_settings, temporary_settings

    from sopflow.services.connection import prefect_api

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.delenv("PREFECT_API_AUTH_STRING", raising=False)
    with prefect_api():
        first = get_current_settings()
    with prefect_api():
        assert get_current_settings() is first  # nothing changed: not built again (35 ms of CPU each time)
    assert first.api.url == "http://127.0.0.1:9/api" and first.api.auth_string is None
    assert first.api.ssl_cert_file == str(sopflow_home / "plain-http-api-ca.pem")
    assert get_current_settings() is not first  # only inside the block

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:10/api")
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "sales:s3cret")
    with prefect_api() as url:
        assert url == get_current_settings().api.url == "http://127.0.0.1:10/api"
        assert get_current_settings().api.auth_string.get_secret_value() == "sales:s3cret"
    monkeypatch.setenv("PREFECT_API_REQUEST_TIMEOUT", "7")  # a Prefect setting sopflow does not set
    with prefect_api():
        assert get_current_settings().api.request_timeout == 7
    with temporary_settings({PREFECT_API_REQUEST_TIMEOUT: 9}), prefect_api():
        assert get_current_settings().api.request_timeout == 9
    with prefect_api():
        assert get_current_settings().api.request_timeout == 7


def test_a_remembered_value_is_built_again_only_for_other_arguments():
    built: list[tuple] = []

    @remember_last_call
    def square(base: int, extra: tuple) -> int:
        built.append((base, extra))
        return base * base

    assert [square(3, ("a",)), square(3, ("a",)), square(3, tuple(["a"]))] == [9, 9, 9]  # equal is enough
    assert built == [(3, ("a",))]
    assert square(4, ("a",)) == 16 and square(3, ("a",)) == 9  # one entry: the last call's
    assert built == [(3, ("a",)), (4, ("a",)), (3, ("a",))]
