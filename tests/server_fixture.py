"""A real `sopflow up` (local Prefect server, deployments served, intake), once per session: on SQLite, the
embedded default, and on PostgreSQL (Prefect's server and sopflow's store) for the flow tests that run on both."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session

from deployments.server import free_port
from sopflow.settings import PROJECT_ROOT
from tests.http_recorder import Recorder, start_recorder
from tests.mail_servers import SmtpRecorder, start_smtp
from tests.postgres import new_database
from tests.support import wait_for

FIXTURE_SOPS = Path(__file__).parent / "fixtures" / "sops"


@dataclass(frozen=True)
class Sopflow:
    """A running `sopflow up`: its environment for CLI calls, addresses and store."""

    env: dict[str, str]
    api_url: str
    ui_url: str
    intake_url: str
    token: str
    home: Path
    log: Path
    login: str  # the Prefect server's `user:password`, as `sopflow up` made it in home

    def store(self) -> Session:
        from sopflow.store.db import engine

        return Session(engine(self.env["SOPFLOW_DATABASE_URL"]))

    def api(self) -> httpx.Client:
        """A client of the Prefect API, logged in as sopflow's commands are. It outwaits Prefect's SQLite busy timeout
        (60 s), the longest a request may wait for the database's lock; the tests check what happened, the
        benchmarks how long it took."""
        user, _, password = self.login.partition(":")
        return httpx.Client(base_url=self.api_url, auth=httpx.BasicAuth(user, password), timeout=90)


@pytest.fixture(scope="session")
def webhooks() -> Iterator[Recorder]:
    """The endpoint the SOPs' webhook steps post to during the tests."""
    recorder, server = start_recorder()
    yield recorder
    server.shutdown()


@pytest.fixture(scope="session")
def mailbox() -> Iterator[SmtpRecorder]:
    """The SMTP server the served SOPs deliver email to during the tests."""
    recorder = SmtpRecorder()
    controller = start_smtp(recorder)
    recorder.url = f"smtp://127.0.0.1:{controller.port}?timeout=10"
    yield recorder
    controller.stop()


@contextmanager
def seed_sopflow_up(root: Path, webhooks: Recorder, mailbox: SmtpRecorder, **databases: str) -> Iterator[Sopflow]:
    """`sopflow up` serving the seed SOPs and the test fixtures' SOPs, with `databases` settings."""
    sop_dir = root / "sops"
    shutil.copytree(PROJECT_ROOT / "sop_definitions", sop_dir)
    for path in FIXTURE_SOPS.glob("*.yaml"):  # SOPs that exist only to exercise the engine
        shutil.copy(path, sop_dir / path.name)
    with start_sopflow_up(root, sop_dir, {
        "SOPFLOW_TASKS": "enrich_company=tests.registered_tasks:enrich_company",
        "SOPFLOW_EMAIL_TRANSPORT": "smtp",
        "SOPFLOW_SMTP_URL": mailbox.url,
        "SOPFLOW_EMAIL_FROM": "sales@sopflow.test",
        "SOPFLOW_SALES_WEBHOOK_URL": f"{webhooks.url}/sales",
        "SOPFLOW_OPERATIONS_WEBHOOK_URL": f"{webhooks.url}/operations",
        **databases,
    }) as up:
        yield up


@pytest.fixture(scope="session")
def sopflow_up(tmp_path_factory, webhooks, mailbox) -> Iterator[Sopflow]:
    """The embedded default: Prefect's server and sopflow's store on SQLite."""
    with seed_sopflow_up(tmp_path_factory.mktemp("sopflow-up"), webhooks, mailbox) as up:
        yield up


@pytest.fixture(scope="session")
def sopflow_up_on_postgres(tmp_path_factory, webhooks, mailbox) -> Iterator[Sopflow]:
    """Production's databases: Prefect's server and sopflow's store each on a PostgreSQL database of their own."""
    with new_database("prefect_test") as prefect, new_database("sopflow_store") as store, \
            seed_sopflow_up(tmp_path_factory.mktemp("sopflow-up-pg"), webhooks, mailbox,
                            SOPFLOW_PREFECT_DATABASE_URL=prefect,
                            SOPFLOW_DATABASE_URL=store.replace("postgresql://", "postgresql+psycopg://")) as up:
        yield up


@pytest.fixture(scope="module", params=["sqlite", "postgresql"], ids=["prefect-on-sqlite", "prefect-on-postgresql"])
def prefect_db_up(request, sopflow_up, sopflow_up_on_postgres) -> Sopflow:
    """`sopflow up` on SQLite, then on PostgreSQL: tests that ask for this fixture run on both. Both are started
    once per session (a fixture named `sopflow_up` with params would restart the session's at each switch)."""
    return sopflow_up if request.param == "sqlite" else sopflow_up_on_postgres


@contextmanager
def start_sopflow_up(root: Path, sop_dir: Path, settings: dict[str, str], *args: str) -> Iterator[Sopflow]:
    """`sopflow up *args` in a process group of its own, its home under `root`, serving `sop_dir`; stopped by
    Ctrl-C."""
    port, intake_port = free_port(), free_port()
    env = {
        "SOPFLOW_HOME": str(root / "home"),
        "SOPFLOW_DATABASE_URL": f"sqlite:///{root / 'home' / 'sopflow.db'}",
        "SOPFLOW_SOP_DIR": str(sop_dir),
        "SOPFLOW_INTAKE_TOKEN": "test-intake-token",
        "SOPFLOW_INTAKE_READ_TIMEOUT": "2",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        **settings,
    }
    launch_env = {k: v for k, v in {**os.environ, **env}.items()
                  if k not in ("PREFECT_API_URL", "PREFECT_API_AUTH_STRING", "PREFECT_SERVER_API_AUTH_STRING",
                                "SOPFLOW_PUBLIC_URL")}
    log = root / "up.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "sopflow.cli", "up", "--port", str(port), "--intake-port", str(intake_port), *args],
            env=launch_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    api_url = f"http://127.0.0.1:{port}/api"
    try:
        wait_for(lambda: process.poll() is not None or "Ctrl-C stops everything" in log.read_text(),
                 "sopflow up to start serving", timeout=120)
        assert process.poll() is None, f"sopflow up exited:\n{log.read_text()}"
        up = Sopflow(
            env={**env, "PREFECT_API_URL": api_url}, api_url=api_url, ui_url=f"http://127.0.0.1:{port}",
            intake_url=f"http://127.0.0.1:{intake_port}", token=env["SOPFLOW_INTAKE_TOKEN"],
            home=root / "home", log=log, login=(root / "home" / "prefect-auth").read_text().strip(),
        )
        wait_for(lambda: _deployments_ready(up), "the SOP deployments to be registered", timeout=60)
        yield up
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C does: sopflow stops everything it started
        try:
            process.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@contextmanager
def start_one_sop_up(root: Path, sop_text: str, settings: dict[str, str]) -> Iterator[Sopflow]:
    """`start_sopflow_up` serving only the SOP whose file is `sop_text`."""
    (root / "sops").mkdir()
    (root / "sops" / "sop.yaml").write_text(sop_text)
    with start_sopflow_up(root, root / "sops", settings) as up:
        yield up


def _deployments_ready(up: Sopflow) -> bool:
    try:
        with up.api() as api:
            response = api.post("/deployments/filter", json={"limit": 50})
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and len(response.json()) > 0
