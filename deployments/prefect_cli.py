"""Prefect's CLI (`python -m deployments.prefect_cli server start ...`), with Python's cyclic garbage collector run
from a thread of its own instead of wherever an allocation trips it, most often the server's event loop; and, on
SQLite, the server's write transactions begun IMMEDIATE (deployments/sqlite_writes.py).

Why: on SQLite, each of the server's connections runs its statements on an aiosqlite thread, and a statement that
waits for another connection's write lock sleeps in SQLite's busy handler holding its connection's mutex. If the
collector then frees a cursor of that connection that still holds a statement (one whose result was not read to
the end), freeing it resets the statement, which waits for that mutex. Run on the event loop, that stops the loop:
the transaction holding the lock is driven by the loop, so it never commits, and the whole server (API, UI,
services) hangs until the waiter's busy timeout (60 s) fails it with "database is locked". Seen in bursts of leads,
read off the stopped loop's native stack (README, Known limits). Collected on this thread, only this thread waits.
"""

from __future__ import annotations

import gc
import threading
import time

COLLECT_EVERY = 0.05  # s between looks at the collector's counts (CPython looks at every allocation)
FULL_AT_MOST_EVERY = 10.0  # s; a full collection of the server's heap takes about 0.15 s of CPU
FREEZE_AFTER = 30.0  # s after start; by then the server has imported its modules and made its app


def collect_off_the_loop() -> None:
    """Turn off automatic collection and collect from a daemon thread instead, by CPython's thresholds: the oldest
    generation whose count is over its threshold; the oldest (a full collection) at most every 10 s, in place of
    CPython's rule that waits for it to grow by a quarter.

    The first full collection after FREEZE_AFTER seconds then freezes what survived it (`gc.freeze`): the ~280,000
    objects of the server's modules and app, which live as long as it does, are not looked at again. A full
    collection then takes milliseconds instead of 0.15 s, which it took every 10 s of a burst of leads, with the
    interpreter's lock held; what is made later is collected as before.
    """
    gc.disable()
    threading.Thread(target=_collect, name="garbage collector", daemon=True).start()


def _collect() -> None:
    thresholds = gc.get_threshold()
    started = last_full = time.monotonic()
    frozen = False
    while True:
        time.sleep(COLLECT_EVERY)
        counts = gc.get_count()
        if counts[0] <= thresholds[0]:
            continue
        generation = next(g for g in (2, 1, 0) if counts[g] > thresholds[g])
        if generation == 2 and time.monotonic() - last_full < FULL_AT_MOST_EVERY:
            generation = 1
        gc.collect(generation)
        if generation == 2:
            last_full = time.monotonic()
            if not frozen and last_full - started >= FREEZE_AFTER:
                gc.freeze()
                frozen = True


if __name__ == "__main__":
    from prefect.cli import app  # here, not above: the collector alone needs none of Prefect

    from deployments import sqlite_writes

    collect_off_the_loop()
    sqlite_writes.install()
    app()
