"""The Prefect server's garbage collection off its event loop (deployments/prefect_cli.py), on real SQLite.

Each case runs tests/collector_scenario.py in a process of its own: a thread standing for the event loop holds a
write lock, another connection waits for it, and a cursor of the waiting connection becomes garbage."""

from __future__ import annotations

import json
import subprocess
import sys

from sopflow.settings import PROJECT_ROOT


def scenario(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, "-m", "tests.collector_scenario", *args], cwd=PROJECT_ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_collected_on_the_loop_the_cursor_stops_it_and_the_waiting_write_fails():
    """The hazard, as Python collects by default: the collection waits for the waiting connection's mutex, so the
    lock is not released before the busy timeout fails the waiter. Shows the scenario is real."""
    assert scenario() == {"b": "database is locked", "collected": True, "committed": True}


def test_collected_off_the_loop_the_lock_is_released_and_the_waiting_write_goes_through():
    assert scenario("--off-the-loop") == {"b": "written", "collected": True, "committed": True}
