"""The processes `sopflow up` starts and stops: a local Prefect server (SQLite, or PostgreSQL by setting), and
the intake."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from sopflow import settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Prefect services whose writes lock the embedded SQLite database under a burst of runs ("database is locked",
# minute-long stalls, 503s): keeping every event (the UI's Events page; task runs, logs and states are kept
# without it) and marking waiting runs Late. On by setting them to true.
QUIET_SERVICES = {"PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
                  "PREFECT_SERVER_SERVICES_LATE_RUNS_ENABLED": "false"}


def server_env(home: Path, port: int) -> dict[str, str]:
    """The Prefect server's environment: its files under `home`, its database (`settings.prefect_database_url()`,
    else SQLite under `home`), no analytics, a login (basic auth), and on SQLite the services that lock it under
    load off unless set."""
    prefect_home = home / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    database = settings.prefect_database_url()
    return {
        **({} if database else QUIET_SERVICES),
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_DATABASE_CONNECTION_URL": database or f"sqlite+aiosqlite:///{prefect_home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_SERVER_API_AUTH_STRING": settings.prefect_server_auth_string(),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
    }


@contextmanager
def local_server(home: Path, port: int, timeout: float = 90.0) -> Iterator[str]:
    """Run `prefect server start` on 127.0.0.1:`port`, its garbage collected off its event loop and its SQLite
    writes begun IMMEDIATE (deployments/prefect_cli.py); yield its API URL; stop it on exit."""
    api_url = f"http://127.0.0.1:{port}/api"
    command = [sys.executable, "-m", "deployments.prefect_cli", "server", "start", "--host", "127.0.0.1",
               "--port", str(port)]
    with child_process("prefect server", command, server_env(home, port), home / "prefect-server.log",
                       f"{api_url}/health", timeout):
        yield api_url


@contextmanager
def intake_server(home: Path, port: int, timeout: float = 60.0) -> Iterator[str]:
    """Run the HTTP intake (`python -m sopflow.web`) on 127.0.0.1:`port`; yield its URL; stop it on exit."""
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "sopflow.web", "--host", "127.0.0.1", "--port", str(port),
               "--workers", str(settings.intake_workers())]
    with child_process("the intake", command, dict(os.environ), home / "intake.log", f"{url}/health", timeout):
        yield url


@contextmanager
def child_process(name: str, command: list[str], env: dict[str, str], log_path: Path, health_url: str,
                  timeout: float) -> Iterator[subprocess.Popen]:
    """Start `command`, logging to `log_path`; yield once `health_url` answers 200; terminate it on exit."""
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # same process group as `sopflow up`: whatever ends the group ends the child too
    try:
        _wait_healthy(name, process, health_url, log_path, timeout)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(name: str, process: subprocess.Popen, health_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{name} exited with code {process.returncode}; its log ({log_path}) ends:\n{tail}")
        try:
            if httpx.get(health_url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{name} did not answer at {health_url} within {timeout:.0f} s; see {log_path}")
