"""The intake's one path to the store: a single thread, and leads written in batches (group commit).

Leads that arrive while a batch is being written wait for the next one, so 500 leads posted at
once cost a few transactions instead of 500 writers queueing for SQLite's lock. Each request
still gets its own answer; a lead the store refuses fails alone, never its batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from sopflow.leads import LeadIn
from sopflow.services.nudge import CLAIMED, nudge_dispatcher
from sopflow.store.leads import Admitted, store_leads

T = TypeVar("T")
MAX_BATCH = 500


class StoreWorker:
    """Runs store calls on one thread; `admit` batches leads. Use inside `async with worker.running()`."""

    def __init__(self, new_lead_sops: Sequence[str]) -> None:
        self.new_lead_sops = tuple(new_lead_sops)
        self._pending: list[tuple[LeadIn, asyncio.Future[Admitted]]] = []
        self._executor: ThreadPoolExecutor | None = None
        self._ready: asyncio.Event | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sopflow-store")
        self._ready = asyncio.Event()
        writer = asyncio.create_task(self._write_leads(), name="sopflow-lead-writer")
        try:
            yield
        finally:
            writer.cancel()
            self._executor.shutdown(wait=True)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        """`function(*args)` on the store thread."""
        assert self._executor is not None, "use StoreWorker inside `async with worker.running()`"
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    async def admit(self, lead: LeadIn) -> Admitted:
        """Store the lead (once per email) and claim its new-lead SOP runs, in the next batch."""
        assert self._ready is not None, "use StoreWorker inside `async with worker.running()`"
        answer: asyncio.Future[Admitted] = asyncio.get_running_loop().create_future()
        self._pending.append((lead, answer))
        self._ready.set()
        return await answer

    async def _write_leads(self) -> None:
        assert self._ready is not None
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._pending:
                batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
                outcomes = await self.run(_store_batch, [lead for lead, _ in batch], self.new_lead_sops)
                if any(isinstance(outcome, Admitted) and outcome.newly_claimed for outcome in outcomes):
                    nudge_dispatcher(CLAIMED)  # `sopflow up` starts their runs now
                for (_, answer), outcome in zip(batch, outcomes):
                    if answer.done():
                        continue
                    if isinstance(outcome, Exception):
                        answer.set_exception(outcome)
                    else:
                        answer.set_result(outcome)


def _store_batch(leads: list[LeadIn], sop_ids: tuple[str, ...]) -> list[Admitted | Exception]:
    """Every lead's outcome; when the batch fails, each lead is tried alone so only the bad one fails."""
    try:
        return list(store_leads(leads, sop_ids))
    except Exception as exc:
        if len(leads) == 1:
            return [exc]
        return [outcome for lead in leads for outcome in _store_batch([lead], sop_ids)]
