"""Flow runs started warm: each in its own process, forked from a parent that has already imported Prefect and the flows.

Stock `serve()` starts every flow run and every resume in a new interpreter (`python -m prefect.engine`),
which spends about 2 s importing Prefect and the flows before the first step. Here a forkserver, started
once, imports them; each flow run is a process forked from it, so a run starts in a fraction of a second
and still runs alone: a run that raises or hangs touches no other, and one killed mid-way exits non-zero, so the
runner marks it Crashed as it would any process it started.

`WarmRunner` is Prefect's `Runner` with its starter swapped for `WarmStarter`, and it polls for scheduled runs
not only every `query_seconds` but also at once when a run ends (a slot is free) or when `wake()` says new runs
were created. A resumed run (someone answered its approval) takes a free slot before new runs, however many of
a burst wait. These use the runner's private poller and limit manager, so prefect is pinned exactly
(constraints.txt); the flow tests run every flow through it.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import multiprocessing.forkserver
import os
from typing import Any
from uuid import UUID

import anyio
import anyio.abc
from prefect.client.schemas.objects import FlowRun
from prefect.runner import Runner
from prefect.runner._control_channel import ControlChannel
from prefect.runner._process_manager import ProcessHandle
from prefect.settings import Settings, get_current_settings

from sopflow.memo import remember_last_call
from sopflow.services.api_ca_file import plain_http_ca

# Imported once by the forkserver, so that every flow run's process starts with them loaded.
PRELOAD = ["deployments.warm_child"]


def resumed(flow_run: FlowRun) -> bool:
    """Whether `flow_run` is scheduled again after a pause (an answer, or a wait that is over), not new."""
    return flow_run.state_name == "Resuming"


def run_environment() -> dict[str, str]:
    """The environment a flow run's process gets (before its own variables): the runner's now, with its Prefect
    settings, as Prefect's engine starter gives its processes (the forkserver kept the one it started with), and
    for a plain-HTTP API a CA file its Prefect clients load in no time (`sopflow.services.api_ca_file`)."""
    return dict(_environment_for(get_current_settings(), tuple(os.environ.items())))


@remember_last_call
def _environment_for(settings: Settings, environ: tuple[tuple[str, str], ...]) -> dict[str, str]:
    """Serializing the settings takes about 20 ms of CPU, so it is done again only when they or os.environ change."""
    env = {**dict(environ), **settings.to_environment_variables(exclude_unset=True)}
    return {**env, **plain_http_ca(env)}


def forkserver() -> multiprocessing.context.ForkServerContext:
    """The forkserver context every flow run is forked from; it starts on first use, with PRELOAD imported."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(PRELOAD)
    return context


class WarmStarter:
    """Starts one flow run in a process forked from the warm parent (Prefect's ProcessStarter protocol)."""

    def __init__(self, context: multiprocessing.context.ForkServerContext, deployment_name: str | None,
                 control_channel: ControlChannel | None, job_env: dict[str, str | None] | None = None) -> None:
        self._context = context
        self._deployment_name = deployment_name
        self._control_channel = control_channel
        self._job_env = {k: v for k, v in (job_env or {}).items() if v is not None}  # a work pool job's variables

    async def start(self, flow_run: FlowRun,
                    task_status: anyio.abc.TaskStatus[ProcessHandle] = anyio.TASK_STATUS_IGNORED) -> None:
        env = {**run_environment(), **self._job_env, "PREFECT__FLOW_RUN_ID": str(flow_run.id),
               "PREFECT__ENABLE_CANCELLATION_AND_CRASHED_HOOKS": "false",  # the runner runs them
               **({"PREFECT__DEPLOYMENT_NAME": self._deployment_name} if self._deployment_name else {})}
        registered = self._register(flow_run.id, env)
        from deployments.warm_child import run_flow_run

        process = self._context.Process(target=run_flow_run, args=(flow_run.id, env), name=f"flow-run-{flow_run.id}")
        try:
            process.start()
        except BaseException:
            if registered:
                self._control_channel.unregister(flow_run.id)
            raise
        task_status.started(ProcessHandle(process))
        await anyio.to_thread.run_sync(process.join)

    def _register(self, flow_run_id: UUID, env: dict[str, str]) -> bool:
        """Give the run the runner's cancel channel (so a cancel runs its hooks), when the runner has one."""
        if self._control_channel is None:
            return False
        try:
            port, token = self._control_channel.register(flow_run_id)
        except RuntimeError:  # the runner could not bind its loopback listener: cancel falls back to a kill
            return False
        env.update(PREFECT__CONTROL_PORT=str(port), PREFECT__CONTROL_TOKEN=token)
        return True


class WarmRunner(Runner):
    """Prefect's Runner, starting every served deployment's flow runs with `WarmStarter`, polling again as soon as
    a slot frees or `wake()` is called."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._forkserver = forkserver()
        self._poll_now: asyncio.Event | None = None

    async def __aenter__(self) -> WarmRunner:
        await super().__aenter__()
        poller, slots = self._scheduled_run_poller, self._limit_manager
        poller._resolve_starter = self._warm_starter
        self._poll_now = asyncio.Event()
        release, poll_every, submit = slots.release, poller.run, poller._submit_scheduled_flow_runs

        def release_and_poll(token: UUID) -> None:
            release(token)
            self._poll_now.set()

        async def poll_every_and_when_woken() -> None:
            async with anyio.create_task_group() as loops:
                loops.start_soon(poll_every)
                loops.start_soon(self._poll_when_woken)

        async def submit_resumed_first(flow_run_response: list[FlowRun], task_group: anyio.abc.TaskGroup) -> None:
            # Prefect's poller takes runs by scheduled time, and a resumed run's is the moment of its answer.
            await submit([run for run in flow_run_response if resumed(run)], task_group)
            await submit([run for run in flow_run_response if not resumed(run)], task_group)

        slots.release, poller.run = release_and_poll, poll_every_and_when_woken
        poller._submit_scheduled_flow_runs = submit_resumed_first
        return self

    def wake(self) -> None:
        """Poll for scheduled runs now (callable from any thread): flow runs were just created."""
        if self._poll_now is not None and self._loop is not None:
            try:
                self._loop.call_soon_threadsafe(self._poll_now.set)
            except RuntimeError:  # the runner has stopped: nothing to wake
                pass

    async def _poll_when_woken(self) -> None:
        while True:
            await self._poll_now.wait()
            self._poll_now.clear()
            if not self._limit_manager.has_slots_available():
                continue  # the next run to end wakes it again
            try:
                await self._scheduled_run_poller._get_and_submit_flow_runs()
            except Exception:  # noqa: BLE001  Prefect unreachable for a moment: the regular poll goes on
                self._logger.warning("Polling for scheduled runs failed; polling again in %s s", self.query_seconds,
                                     exc_info=True)

    def _warm_starter(self, flow_run: FlowRun) -> WarmStarter:
        name = self._deployment_registry.get_deployment_name(flow_run.deployment_id) if flow_run.deployment_id else None
        return WarmStarter(self._forkserver, name, self._control_channel)


def warm_up() -> None:
    """Start the forkserver now (it imports PRELOAD), so the first flow run does not wait for it, in the environment
    flow runs get: each then reuses the Prefect settings the forkserver read (`warm_child.run_settings`)."""
    forkserver()
    inherited = dict(os.environ)
    os.environ.update(run_environment())  # the forkserver's process starts with os.environ as it is
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        os.environ.clear()
        os.environ.update(inherited)
