"""A local Prefect server on SQLite under sopflow's home, started and stopped by us."""

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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def server_env(home: Path, port: int) -> dict[str, str]:
    prefect_home = home / "prefect"
    prefect_home.mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "PREFECT_HOME": str(prefect_home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{prefect_home / 'prefect.db'}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api",
    }


@contextmanager
def local_server(home: Path, port: int, timeout: float = 90.0) -> Iterator[str]:
    """Run `prefect server start` on 127.0.0.1:`port`; yield its API URL; stop it on exit."""
    log_path = home / "prefect-server.log"
    api_url = f"http://127.0.0.1:{port}/api"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1", "--port", str(port)],
            env=server_env(home, port), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )  # same process group as `sopflow up`: whatever ends the group ends the server too
    try:
        _wait_healthy(process, api_url, log_path, timeout)
        yield api_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_healthy(process: subprocess.Popen, api_url: str, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"prefect server exited with code {process.returncode}; its log ends:\n{tail}")
        try:
            if httpx.get(f"{api_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"prefect server did not answer at {api_url} within {timeout:.0f} s; see {log_path}")
