"""Each flow run in its own process, forked warm: a run that raises or hangs leaves the others alone, one killed
mid-step is marked crashed and runs again without repeating what it did, and a burst of leads loses none."""

from __future__ import annotations

import os
import shutil
import signal
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from sqlalchemy import select

from sopflow.settings import PROJECT_ROOT
from sopflow.store.models import SopRun
from tests.server_fixture import Sopflow, start_sopflow_up
from tests.support import finished, flow_state, step_records, wait_for

pytestmark = pytest.mark.server
SOP = "isolation"
BURST = 30
ISOLATION_SOP = """
id: isolation
name: Email, then a team check, then mark working
version: 1
owner: Test Owner
objective:
  statement: Exercise run isolation
  metric: runs
  baseline: 0
  target: 1
  deadline: 2030-01-01
  measure: {kind: runs_completed, per: month}
roles:
  rep: [Alex Kim]
  ops: [Dana Reyes]
trigger:
  event: new_lead
review:
  every: 4w
  owner: ops
steps:
  - id: welcome_email
    kind: email
    owner: rep
    template: qualified_follow_up
  - id: check
    kind: task
    owner: ops
    function: stall_or_raise
  - id: mark_working
    kind: update_lead
    owner: ops
    status: working
"""


@pytest.fixture(scope="module")
def isolated_up(tmp_path_factory, mailbox) -> Iterator[Sopflow]:
    root = tmp_path_factory.mktemp("isolation-up")
    (root / "sops").mkdir()
    (root / "sops" / f"{SOP}.yaml").write_text(ISOLATION_SOP)
    shutil.copytree(PROJECT_ROOT / "sop_definitions" / "templates", root / "sops" / "templates")
    (root / "hang").mkdir()
    with start_sopflow_up(root, root / "sops", {
        "SOPFLOW_TASKS": "stall_or_raise=tests.registered_tasks:stall_or_raise", "HANG_DIR": str(root / "hang"),
        "SOPFLOW_EMAIL_TRANSPORT": "smtp", "SOPFLOW_SMTP_URL": mailbox.url, "SOPFLOW_EMAIL_FROM": "sales@sopflow.test",
    }) as up:
        yield up


def post(up: Sopflow, email: str, company: str) -> str:
    lead = {"email": email, "name": "Iso Lead", "company": company, "title": "VP Sales", "employees": 500}
    answer = httpx.post(f"{up.intake_url}/leads", json=lead, headers={"Authorization": f"Bearer {up.token}"},
                        timeout=60)
    assert answer.status_code == 201, answer.text
    return answer.json()["id"]


def flow_run_of(up: Sopflow, lead_id: str) -> str:
    def created() -> str | None:
        with up.store() as session:
            return session.scalar(select(SopRun.flow_run_id).where(SopRun.lead_id == lead_id))
    return wait_for(created, "the lead's flow run")


def emails_to(mailbox, address: str) -> int:
    return sum(1 for message in list(mailbox.messages) if message["To"] == address)


def test_a_run_that_raises_or_hangs_leaves_the_others_alone_and_a_killed_one_runs_again_once(isolated_up, mailbox):
    up = isolated_up
    hangs = post(up, "hangs@isolation.test", "Hangs Inc")
    raises = post(up, "raises@isolation.test", "Raises Inc")
    calm = post(up, "calm@isolation.test", "Calm Inc")
    pid_file = up.home.parent / "hang" / f"{hangs}.pid"
    pid = int(wait_for(lambda: pid_file.exists() and pid_file.read_text(), "the hanging run's process"))

    finished(up, calm, SOP)  # while the other run hangs in its process
    # the store says completed a moment before the engine sets the run's final state
    wait_for(lambda: flow_state(up, flow_run_of(up, calm)) == "COMPLETED", "the calm run's flow run to complete")
    raised = flow_run_of(up, raises)
    wait_for(lambda: flow_state(up, raised) == "FAILED", "the raising run to fail")
    hanging = flow_run_of(up, hangs)
    assert flow_state(up, hanging) == "RUNNING"
    assert emails_to(mailbox, "hangs@isolation.test") == 1

    os.kill(pid, signal.SIGKILL)  # the run's own process, forked for it alone
    wait_for(lambda: flow_state(up, hanging) == "CRASHED", "the killed run to be marked crashed", timeout=60)
    assert flow_state(up, flow_run_of(up, calm)) == "COMPLETED"

    with up.api() as api:  # run it again, as "Retry" in the Prefect UI does
        api.post(f"/flow_runs/{hanging}/set_state",
                 json={"state": {"type": "SCHEDULED", "name": "Scheduled"}, "force": True}).raise_for_status()
    run = finished(up, hangs, SOP)
    assert set(step_records(up, run.id)) == {"welcome_email", "check", "mark_working"}
    assert emails_to(mailbox, "hangs@isolation.test") == 1  # the email sent before the kill is not sent again
    wait_for(lambda: flow_state(up, hanging) == "COMPLETED", "the rerun's flow run to complete")


def test_a_burst_of_leads_loses_none(isolated_up, mailbox):
    up = isolated_up
    emails = [f"burst-{n}@isolation.test" for n in range(BURST)]
    with ThreadPoolExecutor(8) as pool:
        lead_ids = list(pool.map(lambda email: post(up, email, "Burst Inc"), emails))
    assert len(set(lead_ids)) == BURST

    def all_done() -> list[SopRun] | None:
        with up.store() as session:
            runs = session.scalars(select(SopRun).where(SopRun.lead_id.in_(lead_ids))).all()
        return runs if len(runs) == BURST and all(run.state in ("completed", "failed") for run in runs) else None
    runs = wait_for(all_done, f"all {BURST} runs to end", timeout=300)
    assert {run.state for run in runs} == {"completed"}
    def prefect_states() -> list[str]:  # the store says completed a moment before the run's final state is set
        with up.api() as api:
            found = api.post("/flow_runs/filter", json={"flow_runs": {"id": {"any_": [r.flow_run_id for r in runs]}},
                                                        "limit": BURST}).json()
        return sorted(run["state"]["type"] for run in found)
    wait_for(lambda: "RUNNING" not in prefect_states(), "every burst run's flow run to end", timeout=60)
    assert prefect_states() == ["COMPLETED"] * BURST
    assert [emails_to(mailbox, email) for email in emails] == [1] * BURST
    # Not Prefect's own server log: its SQLite database still meets its lock under a burst (a retried
    # task-run flush, now and then a minute-long wait), with nothing lost, as the assertions above show.
    ours = [up.log, up.home / "intake.log"]
    assert [log.name for log in ours if "database is locked" in log.read_text(errors="replace")] == []
