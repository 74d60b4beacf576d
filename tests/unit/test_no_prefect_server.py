"""PREFECT_API_URL pointing at no server: the commands that need Prefect say so in one line, start nothing, and
keep no trace behind (no traceback, no half-started intake)."""

from __future__ import annotations

import pytest

from deployments.server import free_port
from tests.support import run_cli


@pytest.mark.parametrize("command", [("up", "--port", "1", "--intake-port", "2"), ("up", "--pool", "sales"),
                                     ("deploy", "--pool", "sales"), ("worker", "--pool", "sales")])
def test_a_command_needing_prefect_says_in_one_line_that_no_server_answers(tmp_path, command):
    url = f"http://127.0.0.1:{free_port()}/api"  # nothing listens there
    done = run_cli({"SOPFLOW_HOME": str(tmp_path / "home"), "PREFECT_API_URL": url}, *command, check=False)
    assert done.returncode == 1, done.stderr
    assert done.stderr.strip() == (f"sopflow {command[0]}: no Prefect server answers at {url} (ConnectError); start "
                                   "it, or unset PREFECT_API_URL so that `sopflow up` starts its own")
    assert "Lead intake" not in done.stdout


@pytest.mark.parametrize("command", ["deploy", "worker", "up"])
@pytest.mark.parametrize("name", ["", "  ", "sales/east", "a<b", "x" * 101])
def test_a_work_pool_name_prefect_would_refuse_is_a_usage_error_before_anything_starts(tmp_path, command, name):
    done = run_cli({"SOPFLOW_HOME": str(tmp_path / "home")}, command, "--pool", name, check=False)
    assert done.returncode == 2
    assert "a work pool name is 1 to 100 characters" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "home").exists()  # no server, no store
