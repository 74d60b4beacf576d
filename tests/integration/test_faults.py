"""Faults from outside: sopflow up and its Prefect server restarted while runs wait at approvals, and an SMTP
server that is down when a run sends its email and up a moment later. Nothing is lost and nothing is sent twice.
(Prefect down while leads arrive: test_under_load; a flow run's process killed: test_run_isolation; an HTTP endpoint
down then up: test_seed_sops' handoff webhook; no Prefect server at PREFECT_API_URL: test_no_prefect_server.)"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from deployments.server import free_port
from sopflow.settings import PROJECT_ROOT
from sopflow.store.models import OutboxEmail
from tests.mail_servers import SmtpRecorder
from tests.server_fixture import FIXTURE_SOPS, start_sopflow_up
from tests.support import add_lead, answer, finished, flow_state, sop_run, wait_for

pytestmark = pytest.mark.server
SOP = "email-then-approval"  # an email, then a manager's approval, then the lead marked working


def sops_in(root: Path) -> Path:
    (root / "sops").mkdir()
    shutil.copy(FIXTURE_SOPS / f"{SOP}.yaml", root / "sops")
    shutil.copytree(PROJECT_ROOT / "sop_definitions" / "templates", root / "sops" / "templates")
    return root / "sops"


def smtp_settings(url: str) -> dict[str, str]:
    return {"SOPFLOW_EMAIL_TRANSPORT": "smtp", "SOPFLOW_SMTP_URL": url, "SOPFLOW_EMAIL_FROM": "sales@sopflow.test"}


def outbox_row(up, lead_id: str) -> OutboxEmail | None:
    with up.store() as session:
        return session.scalar(select(OutboxEmail).where(OutboxEmail.lead_id == lead_id))


def test_runs_waiting_at_approvals_survive_a_restart_of_sopflow_up_and_its_prefect_server(tmp_path, mailbox):
    sops, settings = sops_in(tmp_path), smtp_settings(mailbox.url)
    emails = [f"restart-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(3)]
    with start_sopflow_up(tmp_path, sops, settings) as up:
        leads = [add_lead(up, email=email) for email in emails]
        runs = [wait_for(lambda lead=lead: (r := sop_run(up, lead["id"], SOP)) and r.flow_run_id and r,
                         "the flow run to be created") for lead in leads]
        for run in runs:
            wait_for(lambda run=run: flow_state(up, run.flow_run_id) == "PAUSED", "the run to wait for its approval")
    # Ctrl-C stopped everything, the Prefect server too; the same home starts again
    with start_sopflow_up(tmp_path, sops, settings) as up:
        assert [flow_state(up, run.flow_run_id) for run in runs] == ["PAUSED"] * 3
        for lead in leads:
            answer(up, lead["id"], "manager_check", "Maria Lopez")
        for lead, run in zip(leads, runs):
            assert finished(up, lead["id"], SOP).outcome == "completed"
            wait_for(lambda run=run: flow_state(up, run.flow_run_id) == "COMPLETED", "Prefect to show it completed")
    for email in emails:  # sent before the restart, not again
        assert sum(1 for m in list(mailbox.messages) if m["To"] == email) == 1


def test_an_email_whose_smtp_server_is_down_goes_out_once_when_it_is_back(tmp_path):
    port, recorder = free_port(), SmtpRecorder()  # nothing listens on the port yet
    with start_sopflow_up(tmp_path, sops_in(tmp_path), smtp_settings(f"smtp://127.0.0.1:{port}?timeout=5")) as up:
        lead = add_lead(up, email=(address := f"smtp-down-{uuid.uuid4().hex[:6]}@example.com"))
        failed = wait_for(lambda: (row := outbox_row(up, lead["id"])) and row.attempts >= 1 and row.status == "queued"
                          and row, "the first try to fail")
        assert "refused" in failed.last_error.lower() or "connect" in failed.last_error.lower(), failed.last_error
        server = Controller(recorder, hostname="127.0.0.1", port=port)
        server.start()  # the SMTP server is back
        try:
            sent = wait_for(lambda: (row := outbox_row(up, lead["id"])) and row.status == "sent" and row,
                            "the task's retry to send it", timeout=120)
            run = sop_run(up, lead["id"], SOP)
            wait_for(lambda: flow_state(up, run.flow_run_id) == "PAUSED", "the run to go on to its approval")
            answer(up, lead["id"], "manager_check", "Maria Lopez")
            finished(up, lead["id"], SOP)
        finally:
            server.stop()
    assert sent.attempts >= 2
    assert [m["To"] for m in recorder.messages] == [address]  # once, though the run resumed after it
