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


FREEZING = """
import gc, json, threading, time, weakref
from deployments import prefect_cli

prefect_cli.FREEZE_AFTER, prefect_cli.FULL_AT_MOST_EVERY = 0.5, 0.1  # the server's 30 s and 10 s, shortened
gc.set_threshold(100, 2, 2)  # CPython's (700, 10, 10), lowered so that full collections come within the test


class Cycle:
    def __init__(self):
        self.me = self


started = time.monotonic()
prefect_cli.collect_off_the_loop()
while not gc.get_freeze_count() and time.monotonic() - started < 20:
    [Cycle() for _ in range(200)]  # garbage, as requests leave it
    time.sleep(0.01)
frozen_after = time.monotonic() - started
freed = threading.Event()
later = Cycle()
weakref.finalize(later, freed.set)
del later  # cyclic garbage made after the freeze
while not freed.is_set() and time.monotonic() - started < 30:
    [Cycle() for _ in range(200)]  # the server goes on allocating
    time.sleep(0.01)
print(json.dumps({"frozen": gc.get_freeze_count() > 0, "frozen_after": frozen_after,
                  "later_garbage_collected": freed.is_set()}))
"""


def test_what_survives_the_first_full_collection_after_start_is_frozen_and_later_garbage_is_still_collected():
    """The server's modules and app are not looked at again by each full collection (0.15 s of CPU every 10 s of a
    burst); garbage made afterwards is collected as before."""
    done = subprocess.run([sys.executable, "-c", FREEZING], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["frozen"] and outcome["later_garbage_collected"], outcome
    assert outcome["frozen_after"] >= 0.5, outcome  # not before FREEZE_AFTER
