"""What the seed SOPs and the bad-input doors leave behind holds no email address: logs, parameters, artifacts.

Runs after test_seed_sops.py (file order), whose leads have then been through every seed SOP; run
alone, it first takes leads through the seed SOPs no run has completed yet. Then it knocks on
every door with bad input that carries email addresses, and reads everything a person or a log
collector could see: `sopflow up`'s output, the intake's and the Prefect server's logs, every log
line, flow run parameter, state message and run input in Prefect, and every artifact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from sopflow.settings import PROJECT_ROOT
from sopflow.store.models import Lead, SopRun
from tests.support import add_lead, answer, finished, qualify, run_cli, sop_run, sopflow, wait_for

pytestmark = pytest.mark.server

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
SEED_SOPS = sorted(path.stem for path in (PROJECT_ROOT / "sop_definitions").glob("*.yaml"))


def completed_sops(up) -> set[str]:
    with up.store() as session:
        return set(session.scalars(select(SopRun.sop_id).where(SopRun.state == "completed")))


def wake(up, lead_id: str, sop: str) -> None:
    run = wait_for(lambda: (r := sop_run(up, lead_id, sop)) is not None and r.state == "waiting" and r,
                   f"the {sop} run to wait")
    sopflow(up.env, "wake", run.flow_run_id)


def run_every_seed_sop(up) -> None:
    """Take leads through the seed SOPs that no run has completed yet (all of them, if this file runs alone)."""
    missing = set(SEED_SOPS) - completed_sops(up)
    if missing & {"lead-qualification", "prospecting"}:
        nurtured = add_lead(up, title="Analyst", employees="15", industry="retail", source="trade show")["id"]
        wake(up, nurtured, "prospecting")
        finished(up, nurtured, "prospecting")
    if missing - {"lead-qualification", "prospecting"}:
        lead = add_lead(up)["id"]
        qualify(up, lead)
        answer(up, lead, "demo_outcome", "Alex Kim", "--input", "outcome=interested")
        answer(up, lead, "deal_terms", "Alex Kim", "--input", "deal_value=9000", "--input", "discount_percent=5")
        answer(up, lead, "contract_signed", "Alex Kim")
        answer(up, lead, "operations_acknowledged", "Omar Haddad")
        wake(up, lead, "post-sale-follow-up")
        answer(up, lead, "satisfaction_check", "Sofia Rossi", "--input", "satisfaction=5")
        finished(up, lead, "post-sale-follow-up")
    assert set(SEED_SOPS) <= completed_sops(up)


def knock_with_bad_input(up) -> list[str]:
    """Bad input at every door, each carrying an email address; returns the addresses used."""
    used = [f"door-{n}@privacy.example" for n in range(8)]
    auth = {"Authorization": f"Bearer {up.token}"}
    bodies = [
        {"email": used[0], "name": "Nul\u0000Byte"},
        {"email": used[1], "employees": 2**40},
        {"email": used[2], "unexpected": used[2]},
        {"email": f"not an address {used[3]}"},
    ]
    for body in bodies:
        assert httpx.post(f"{up.intake_url}/leads", json=body, headers=auth, timeout=30).status_code == 422
    assert httpx.post(f"{up.intake_url}/leads", json={"email": used[4]}, timeout=30,
                      headers={"Authorization": f"Bearer {used[4]}"}).status_code == 401
    assert httpx.post(f"{up.intake_url}/leads", content=b'{"email": "' + used[5].encode() + b'", "x": "' + b"a" * 70000
                      + b'"}', headers=auth, timeout=30).status_code == 413
    assert httpx.get(f"{up.intake_url}/unsubscribe", params={"lead": used[6], "token": used[6]}, timeout=30).status_code == 400
    assert run_cli(up.env, "lead", "add", "--email", used[7], "--name", "Bad\u202eName", check=False).returncode == 2
    failing = add_lead(up, company="Enrichment Fails Inc")  # its team task function raises, quoting the email
    run = wait_for(lambda: (r := sop_run(up, failing["id"], "custom-task")) is not None and r.state == "failed" and r,
                   "the custom-task run to fail")
    wait_for(lambda: "Task function 'enrich_company' failed" in " ".join(logs_of(up, run.flow_run_id)),
             "the failure's log line to reach Prefect (its process sends logs in batches)", timeout=60)
    with up.store() as session:
        used.append(session.get(Lead, failing["id"]).email)
    return used


def logs_of(up, flow_run_id: str) -> list[str]:
    with up.api() as api:
        return [log["message"] for log in api.post("/logs/filter", json={
            "logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200}).json()]


def prefect_records(up) -> Iterator[tuple[str, str]]:
    """(where, text) for everything Prefect holds that a person could read."""
    with up.api() as api:
        offset = 0
        while logs := api.post("/logs/filter", json={"limit": 200, "offset": offset, "sort": "TIMESTAMP_ASC"}).json():
            for log in logs:
                yield f"Prefect log of flow run {log['flow_run_id']}", log["message"]
            offset += len(logs)
        offset = 0
        while runs := api.post("/flow_runs/filter", json={"limit": 200, "offset": offset, "sort": "START_TIME_DESC"}).json():
            for run in runs:
                yield f"parameters of flow run {run['name']}", str(run["parameters"])
                yield f"state of flow run {run['name']}", str((run["state"] or {}).get("message"))
                inputs = api.post(f"/flow_runs/{run['id']}/input/filter", json={"prefix": "", "limit": 100})
                for run_input in inputs.raise_for_status().json():
                    yield f"input {run_input['key']} of flow run {run['name']}", run_input["value"]
            offset += len(runs)
        task_runs = api.post("/task_runs/filter", json={"limit": 200, "sort": "EXPECTED_START_TIME_DESC",
                                                         "task_runs": {"state": {"type": {"any_": ["FAILED", "CRASHED"]}}}})
        for task_run in task_runs.json():
            yield f"state of task run {task_run['name']}", str((task_run["state"] or {}).get("message"))
        offset = 0
        while artifacts := api.post("/artifacts/filter", json={"limit": 200, "offset": offset}).json():
            for artifact in artifacts:
                yield f"artifact {artifact['key']}", f"{artifact['description']} {artifact['data']}"
            offset += len(artifacts)


def log_files(up) -> Iterator[tuple[str, str]]:
    for path in (up.log, up.home / "intake.log", up.home / "prefect-server.log"):
        yield str(path), Path(path).read_text(errors="replace")


def test_no_email_address_in_logs_parameters_or_artifacts(sopflow_up):
    up = sopflow_up
    run_every_seed_sop(up)
    used = knock_with_bad_input(up)
    sender = up.env["SOPFLOW_EMAIL_FROM"]  # the sales team's own address may appear; no lead's may
    found = [(where, match) for where, text in [*log_files(up), *prefect_records(up)]
             for match in EMAIL.findall(text) if match != sender]
    assert found == [], found[:20]
    prefect_logs = " ".join(text for where, text in prefect_records(up) if where.startswith("Prefect log"))
    assert "Task function 'enrich_company' failed" in prefect_logs and "[email]" in prefect_logs  # masked, not dropped
    assert all(address not in Path(up.log).read_text() for address in used)
