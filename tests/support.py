"""Helpers shared by the tests: polling, and running the real `sopflow` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def wait_for(probe: Callable[[], T], what: str, timeout: float = 90.0, every: float = 0.5) -> T:
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def run_cli(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run `sopflow ARGS` in a fresh process, as a user or a script would."""
    done = subprocess.run(
        [sys.executable, "-m", "sopflow.cli", *args], env={**os.environ, **env},
        capture_output=True, text=True, timeout=120,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"sopflow {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


def cli_json(env: dict[str, str], *args: str) -> Any:
    return json.loads(run_cli(env, *args, "--json").stdout)
