"""What each warm-started flow run's process reads: Prefect's settings once, in the parent, unless the run's own
environment changes them; no heartbeat unless one is asked for."""

from __future__ import annotations

import os
import subprocess
import sys

from sopflow.settings import PROJECT_ROOT


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


def forked_run_probe(env: dict[str, str], answer) -> None:
    """Run in a process forked from the forkserver, as a flow run is: does it reuse the parent's settings, and which
    of Prefect's API models would it still have to build (Prefect defers that to each model's first use)?"""
    from pydantic import BaseModel

    from deployments.warm_child import reads_parent_settings

    unbuilt, classes = set(), BaseModel.__subclasses__()
    while classes:
        model = classes.pop()
        classes.extend(model.__subclasses__())
        if model.__module__.startswith("prefect.") and not model.__pydantic_complete__:
            unbuilt.add(model.__qualname__)
    answer.put((reads_parent_settings(env), sorted(unbuilt)))


FORKED_RUN = """
from prefect.settings import PREFECT_API_URL, temporary_settings
from deployments.warm_start import forkserver, run_environment, warm_up
from tests.unit.test_warm_child import forked_run_probe

with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):  # as `sopflow up` and `sopflow worker` run
    warm_up()
    context = forkserver()
    answer = context.SimpleQueue()
    run = context.Process(target=forked_run_probe, args=(run_environment(), answer))
    run.start()
    print(answer.get())
    run.join()
"""


def test_a_forked_run_reuses_the_prefect_settings_the_forkserver_read_and_its_built_models(sopflow_home):
    """The forkserver starts in the environment runs get (the runner's settings, as Prefect's starter passes them,
    spell values differently from the environment: 'False' for 'false', defaults marked set), and has built the
    validators of Prefect's API models, which would cost each run about 25 ms of CPU."""
    env = {**os.environ, "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PYTHONPATH": str(PROJECT_ROOT)}
    forked = subprocess.run([sys.executable, "-c", FORKED_RUN], env=env, cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=120)
    assert forked.returncode == 0, forked.stderr
    assert forked.stdout.strip() == "(True, [])"


def test_the_run_environment_follows_the_runners_settings_and_environment_as_they_change(sopflow_home, monkeypatch):
    """It is computed once and kept while neither changes: a new settings context or variable is seen at once."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from deployments.warm_start import run_environment

    with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert run_environment()["PREFECT_API_URL"] == "http://127.0.0.1:9/api"
        with temporary_settings({PREFECT_API_URL: "http://127.0.0.1:10/api"}):
            assert run_environment()["PREFECT_API_URL"] == "http://127.0.0.1:10/api"
        assert run_environment()["PREFECT_API_URL"] == "http://127.0.0.1:9/api"
        monkeypatch.setenv("SOPFLOW_TEST_MARK", "one")
        assert run_environment()["SOPFLOW_TEST_MARK"] == "one"
        monkeypatch.setenv("SOPFLOW_TEST_MARK", "two")
        handed_out = run_environment()
        assert handed_out["SOPFLOW_TEST_MARK"] == "two"
        handed_out["SOPFLOW_TEST_MARK"] = "changed by a caller"
        assert run_environment()["SOPFLOW_TEST_MARK"] == "two"
