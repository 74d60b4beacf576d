"""What each warm-started flow run's process reads: Prefect's settings once, in the parent, unless the run's own
environment changes them; no heartbeat unless one is asked for."""

from __future__ import annotations

import os


def test_flow_runs_read_prefect_settings_once_and_send_no_heartbeat_unless_asked(sopflow_home, monkeypatch):
    from prefect.settings import get_current_settings

    from deployments import warm_child  # the forkserver's module: imported here, under this test's home

    same = warm_child.run_settings(dict(os.environ))
    assert same.api.url == get_current_settings().api.url and same.flows.heartbeat_frequency is None
    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")  # a run whose job sets another server
    other = warm_child.run_settings(dict(os.environ))
    assert other.api.url == "http://127.0.0.1:9/api" and other.flows.heartbeat_frequency is None
    monkeypatch.setenv("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "60")
    assert warm_child.run_settings(dict(os.environ)).flows.heartbeat_frequency == 60
