"""A Prefect user's habits work on the server `sopflow up` starts: Prefect's CLI, its client, "run deployment"."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from tests.support import run_cli, wait_for

pytestmark = pytest.mark.server


def prefect(up, *args: str) -> subprocess.CompletedProcess:
    """`prefect ARGS` as a person would type it, logged in to the server `up` started."""
    env = {**os.environ, "PREFECT_API_URL": up.api_url, "PREFECT_API_AUTH_STRING": up.login,
           "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "prefect", *args], env=env, capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("command", [
    ("flow-run", "ls"), ("deployment", "ls"), ("work-pool", "ls"), ("block", "ls"), ("artifact", "ls"),
    ("automation", "ls"), ("flow", "ls"),
])
def test_prefect_list_commands_work_against_sopflows_server(sopflow_up, command):
    done = prefect(sopflow_up, *command)
    assert done.returncode == 0 and "exception" not in (done.stdout + done.stderr).lower(), done.stdout + done.stderr


def test_each_sops_job_aid_is_an_artifact_keyed_by_its_id(sopflow_up):
    with sopflow_up.api() as api:
        found = api.post("/artifacts/latest/filter", json={"artifacts": {"key": {"like_": "job-aid-"}}, "limit": 50})
    aids = {artifact["key"]: artifact for artifact in found.raise_for_status().json()}
    sops = {path.stem for path in Path(sopflow_up.env["SOPFLOW_SOP_DIR"]).glob("*.yaml")}
    assert set(aids) == {f"job-aid-{sop}" for sop in sops}
    qualification = aids["job-aid-lead-qualification"]
    assert "```mermaid" in qualification["data"] and "rep_qualification" in qualification["data"]


def test_the_deployment_list_shows_every_sop(sopflow_up):
    listed = prefect(sopflow_up, "deployment", "ls").stdout
    assert "lead-qualification/lead-qualification" in listed and "presentation-demo/presentation-demo" in listed


def test_the_prefect_client_reads_flow_runs_with_its_defaults(sopflow_up):
    async def read() -> tuple[list, list]:
        async with get_client() as client:
            return await client.read_flow_runs(), await client.read_deployments()

    with temporary_settings({PREFECT_API_URL: sopflow_up.api_url, PREFECT_API_AUTH_STRING: sopflow_up.login}):
        runs, deployments = asyncio.run(read())
    assert isinstance(runs, list) and {d.name for d in deployments} >= {"lead-qualification", "prospecting"}


def run_by_hand(up, lead_id: str) -> dict:
    """Start lead-qualification from Prefect's CLI, as "run deployment" in the UI does; wait for its end state."""
    started = prefect(up, "deployment", "run", "lead-qualification/lead-qualification",
                      "--param", f"lead_id={lead_id}")
    assert started.returncode == 0, started.stdout + started.stderr
    run_id = next(line.split()[-1] for line in started.stdout.splitlines() if "UUID" in line)

    def ended() -> dict | None:
        with up.api() as api:
            run = api.get(f"/flow_runs/{run_id}").json()
        return run if run["state"]["type"] in ("FAILED", "COMPLETED", "CRASHED") else None

    return wait_for(ended, "the hand-started run to end", timeout=180)


def test_a_run_started_by_hand_for_an_unknown_lead_fails_in_one_sentence(sopflow_up):
    lead_id = str(uuid.uuid4())
    run = run_by_hand(sopflow_up, lead_id)
    assert run["state"]["type"] == "FAILED"
    message = run["state"]["message"]
    assert message.startswith(f"No lead has id {lead_id};") and "sopflow lead add" in message
    assert message.count(". ") == 0 and "Traceback" not in message and "sqlalchemy" not in message.lower()


def test_a_lead_id_that_is_not_one_is_refused_without_repeating_it(sopflow_up):
    """What someone might type there (a name, an address) is not repeated in sopflow's answer: it may be personal data."""
    run = run_by_hand(sopflow_up, "Grace-Hopper-Harbor")
    assert run["state"]["type"] == "FAILED"
    assert "not a lead id" in run["state"]["message"] and "Grace" not in run["state"]["message"]

    def said() -> list[str]:  # the run's logs reach the server in batches, shortly after its end
        with sopflow_up.api() as api:
            logs = api.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run["id"]]}}, "limit": 200})
        return [log["message"] for log in logs.json() if "not a lead id" in log["message"]]

    assert not any("Grace" in message for message in wait_for(said, "the run's error in its log"))


@pytest.mark.parametrize("command", [("deploy", "--pool", "sales"), ("worker", "--pool", "sales")])
def test_a_server_that_refuses_sopflows_login_is_one_line_and_nothing_is_deployed(sopflow_up, command):
    done = run_cli({**sopflow_up.env, "PREFECT_API_AUTH_STRING": "sopflow:wrong"}, *command, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == (f"sopflow {command[0]}: the Prefect server at {sopflow_up.api_url} refused "
                                   "sopflow's login (HTTP 401); set PREFECT_API_AUTH_STRING to its user:password")
    with sopflow_up.api() as api:
        assert api.get("/work_pools/sales").status_code == 404
