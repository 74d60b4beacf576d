"""The hang that deployments/prefect_cli.py keeps out of Prefect's server, on real SQLite; run in a process of its
own (it sets the process's garbage collection): `python -m tests.collector_scenario [--off-the-loop]`.

The main thread stands for the server's event loop: it holds a write lock on connection `a` and, working on,
commits it. Meanwhile connection `b`, on a thread of its own as aiosqlite runs it, waits in SQLite's busy handler
for that lock, and a cursor of `b` that still holds a statement becomes cyclic garbage. Prints what happened as
JSON: whether `b`'s write went through, whether the cursor was collected, whether the main thread committed.
"""

from __future__ import annotations

import gc
import json
import sqlite3
import sys
import tempfile
import threading
import time
from pathlib import Path

from deployments.prefect_cli import collect_off_the_loop

BUSY_TIMEOUT_MS = 2000


class Garbage:
    """A reference cycle holding a cursor; says when the collector frees it."""

    def __init__(self, cursor: sqlite3.Cursor, collected: threading.Event) -> None:
        self.cursor, self.collected, self.cycle = cursor, collected, self

    def __del__(self) -> None:
        self.collected.set()


def connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return connection


def main(off_the_loop: bool) -> dict[str, object]:
    gc.disable()  # nothing is collected before the scene is set
    with tempfile.TemporaryDirectory() as tmp:
        a, b = connect(Path(tmp) / "db.sqlite"), connect(Path(tmp) / "db.sqlite")
        a.execute("CREATE TABLE t (x INTEGER)")
        pending = b.cursor()
        pending.execute("PRAGMA busy_timeout")  # a row not read: the cursor keeps its statement
        collected, outcome = threading.Event(), {}
        holder = [Garbage(pending, collected)]
        del pending
        a.execute("BEGIN IMMEDIATE")
        a.execute("INSERT INTO t VALUES (1)")

        def write_on_b() -> None:
            try:
                b.execute("INSERT INTO t VALUES (2)")
                outcome["b"] = "written"
            except sqlite3.OperationalError as error:
                outcome["b"] = str(error)

        writer = threading.Thread(target=write_on_b)
        writer.start()
        time.sleep(0.2)  # b is now in the busy handler, holding its mutex
        holder.clear()  # the cursor is garbage now
        gc.enable()  # as by default: a collection runs on whichever thread allocates
        if off_the_loop:
            collect_off_the_loop()
        work = []
        for _ in range(50):  # the loop's work: allocations that trip a collection
            work.append([[] for _ in range(1000)])
            time.sleep(0.01)
        a.execute("COMMIT")
        writer.join()
        deadline = time.monotonic() + 10
        while not collected.is_set() and time.monotonic() < deadline:
            time.sleep(0.05)
        outcome.update(collected=collected.is_set(), committed=not a.in_transaction)
        return outcome


if __name__ == "__main__":
    print(json.dumps(main("--off-the-loop" in sys.argv[1:])))
