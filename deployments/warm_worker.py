"""`sopflow worker`: Prefect's process worker, starting each flow run warm (forked from a parent that has imported
Prefect and the flows, as `sopflow up` does) instead of in a new interpreter. Polls a process work pool like
`prefect worker start --pool NAME`; a run killed mid-way still ends Crashed (its own process exits non-zero).
A pool job's `env` reaches each run; its `command` and `working_dir` do not apply (runs are forked, not commands)."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.responses import WorkerFlowRunResponse
from prefect.flows import load_flow_from_flow_run
from prefect.runner._flow_run_executor import FlowRunExecutionResult, FlowRunExecutorContext
from prefect.runner._process_manager import ProcessHandle
from prefect.settings import PREFECT_WORKER_QUERY_SECONDS, temporary_settings
from prefect.workers.process import ProcessJobConfiguration, ProcessWorker, ProcessWorkerResult

from deployments.warm_start import WarmStarter, forkserver, resumed, warm_up


class WarmProcessWorker(ProcessWorker):
    """A process worker whose flow runs are forked warm; the work pool's job `env` reaches each run. When a run's
    process ends it polls the pool at once, as `sopflow up`'s runner does, rather than at its next poll; a resumed
    run takes a free slot before new ones."""

    _polling_now = False

    @classmethod
    def __dispatch_key__(cls) -> str:  # its own key in Prefect's registry of worker types: the process one stays
        return "sopflow-warm-process"

    def _release_limit_slot(self, flow_run_id: UUID) -> None:
        super()._release_limit_slot(flow_run_id)
        if self._runs_task_group is not None and not self._polling_now:
            self._runs_task_group.start_soon(self._poll_now)

    async def _submit_scheduled_flow_runs(self, flow_run_response: list[WorkerFlowRunResponse]) -> list[FlowRun]:
        first = sorted(flow_run_response, key=lambda entry: not resumed(entry.flow_run))  # stable: else as Prefect sent
        return await super()._submit_scheduled_flow_runs(first)

    async def _poll_now(self) -> None:
        self._polling_now = True
        try:
            await self.get_and_submit_flow_runs()
        except Exception:  # noqa: BLE001  Prefect unreachable for a moment: the regular poll goes on
            self._logger.warning("Polling work pool %r failed; polling again at the next interval", self._work_pool_name,
                                 exc_info=True)
        finally:
            self._polling_now = False

    async def run(self, flow_run: FlowRun, configuration: ProcessJobConfiguration,
                  task_status: anyio.abc.TaskStatus[int] | None = None) -> ProcessWorkerResult:
        task_status = task_status or anyio.TASK_STATUS_IGNORED
        execution: FlowRunExecutionResult | None = None
        async with FlowRunExecutorContext() as ctx:
            starter = WarmStarter(forkserver(), None, ctx.control_channel, configuration.env)
            executor = ctx.create_executor(flow_run, starter, resolve_flow=load_flow_from_flow_run,
                                           propose_submitting=False)

            async def execute(*, task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED) -> None:
                nonlocal execution
                execution = await executor.submit(task_status=task_status)

            async with anyio.create_task_group() as group:
                handle = await group.start(execute)
                task_status.started(handle.pid)
        if execution is None or execution.status_code is None:
            raise RuntimeError(f"flow run {flow_run.id} did not start")
        return ProcessWorkerResult(status_code=execution.status_code, identifier=str(execution.handle.pid))


def run_worker(pool: str, name: str | None, limit: int, say: Any = print, poll_seconds: float = 1.0) -> None:
    """Poll `pool` every `poll_seconds` (as `sopflow up` polls; Prefect's workers default to 10 s; an explicit
    PREFECT_WORKER_QUERY_SECONDS wins) and run its flow runs warm, at most `limit` at once, until interrupted
    (Ctrl-C, or SIGTERM as a service manager sends it)."""
    signal.signal(signal.SIGTERM, lambda signum, frame: signal.raise_signal(signal.SIGINT))
    if os.environ.get("PREFECT_WORKER_QUERY_SECONDS"):
        poll_seconds = PREFECT_WORKER_QUERY_SECONDS.value()

    async def work() -> None:
        async with WarmProcessWorker(name=name, work_pool_name=pool, limit=limit) as worker:
            say(f"Worker {worker.name!r} runs work pool {pool!r}'s flow runs warm, {limit} at once. Ctrl-C stops it.")
            await worker.start()

    try:
        with temporary_settings(updates={PREFECT_WORKER_QUERY_SECONDS: poll_seconds}):
            warm_up()  # under the settings its runs get
            asyncio.run(work())
    except KeyboardInterrupt:
        pass
    say("worker stopped.")
