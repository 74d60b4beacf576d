"""What a warm-started flow run's process does: what `python -m prefect.engine` does, with its imports already made.

The forkserver imports this module once: Prefect, the engine, every served flow, the modules a run would import
on first use, Prefect's settings, and the store's engine (its schema checked). Each flow run's process is
forked from it and only runs `run_flow_run`.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Mapping
from uuid import UUID

import anyio._backends._asyncio  # noqa: F401  what each run would otherwise import on first use
import anyio.streams.stapled  # noqa: F401
import anyio.streams.tls  # noqa: F401
import encodings.idna  # noqa: F401
import prefect._internal.observers  # noqa: F401
import prefect.concurrency._sync  # noqa: F401
import prefect.task_engine  # noqa: F401
import prefect.utilities.visualization  # noqa: F401
import rich._emoji_codes  # noqa: F401
from prefect._internal.control_listener import configure_from_env
from prefect.context import SettingsContext, get_settings_context
from prefect.engine import handle_engine_signals
from prefect.flow_engine import flow_run_logger, load_flow, load_flow_run, run_flow
from prefect.settings import Settings, get_current_settings
from pydantic import BaseModel
from sqlalchemy.orm import configure_mappers

import flows.audit  # noqa: F401  the served flows, imported before any run is forked
import flows.rescore  # noqa: F401
import flows.review  # noqa: F401
import flows.snop  # noqa: F401
from flows.sops import flows_in, forget_if_changed
from sopflow import settings
from sopflow.services.connection import prefect_settings_in
from sopflow.store.db import engine


def build_prefect_models() -> None:
    """Build the validators of Prefect's API models now. Prefect defers them to each model's first use, which would
    cost every run about 25 ms of CPU for the dozen or so its API calls need; all of them take about 80 ms, once."""
    classes = BaseModel.__subclasses__()
    while classes:
        model = classes.pop()
        classes.extend(model.__subclasses__())
        if model.__module__.startswith("prefect.") and not model.__pydantic_complete__:
            model.model_rebuild(raise_errors=False)


forget_if_changed(settings.sop_dir())
flows_in(settings.sop_dir())  # every SOP compiled once, here, not in each run's process
build_prefect_models()
configure_mappers()  # the store's ORM set up once, not at each run's first query
try:  # the store's engine made and its schema checked once; each run opens its own connections
    engine().dispose()
except Exception:  # noqa: BLE001  a store that cannot be opened: each run says why in its own log
    pass

HEARTBEAT_SETTINGS = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


_PARENT_SETTINGS = prefect_settings_in(os.environ)


def reads_parent_settings(env: Mapping[str, str]) -> bool:
    """Whether a run started with `env` has the Prefect settings this parent read: `env` sets the same ones (as it
    does when the forkserver started in the environment runs get: `warm_start.warm_up`)."""
    return prefect_settings_in(env) == _PARENT_SETTINGS


def run_settings(env: Mapping[str, str]) -> Settings:
    """Prefect's settings for a run started with `env`: the parent's, read once, when `env` sets the same ones
    (reading them costs a run about 0.1 s of CPU), else read anew.

    Heartbeats are off unless set: the runner that started the run watches its process and marks it Crashed when
    it dies, and a sync flow's heartbeat thread would hold the run's process up to a second after it ends.
    """
    read = get_current_settings() if reads_parent_settings(env) else Settings()
    if any(name in env for name in HEARTBEAT_SETTINGS):
        return read
    return read.model_copy(update={"flows": read.flows.model_copy(update={"heartbeat_frequency": None})})


def run_flow_run(flow_run_id: UUID, env: dict[str, str]) -> None:
    """Run flow run `flow_run_id` in this process; exits 0 when it ends, paused or aborted, non-zero when it crashes."""
    os.environ.update(env)
    forget_if_changed(settings.sop_dir())  # SOP files edited or added since the parent compiled them
    configure_from_env()  # the runner's cancel channel, before any flow code runs
    try:
        with SettingsContext(profile=get_settings_context().profile, settings=run_settings(env)), \
                handle_engine_signals(flow_run_id):
            flow_run = load_flow_run(flow_run_id=flow_run_id)
            try:
                flow = load_flow(flow_run)
            except Exception:
                flow_run_logger(flow_run=flow_run).error("The flow of this run could not be loaded.", exc_info=True)
                raise
            run_flow(flow, flow_run=flow_run, error_logger=flow_run_logger(flow_run=flow_run))
    finally:
        # A forked process ends without running exit handlers: run them, so Prefect sends the run's last logs
        # and events and stops its worker threads.
        atexit._run_exitfuncs()
