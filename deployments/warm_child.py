"""What a warm-started flow run's process does: what `python -m prefect.engine` does, with its imports already made.

The forkserver imports this module (and so Prefect, the engine and every served flow) once; each flow run's
process is forked from it and only runs `run_flow_run`.
"""

from __future__ import annotations

import atexit
import os
from uuid import UUID

from prefect._internal.control_listener import configure_from_env
from prefect.context import SettingsContext, get_settings_context
from prefect.engine import handle_engine_signals
from prefect.flow_engine import flow_run_logger, load_flow, load_flow_run, run_flow
from prefect.settings import Settings

import flows.audit  # noqa: F401  the served flows, imported before any run is forked
import flows.rescore  # noqa: F401
import flows.review  # noqa: F401
import flows.snop  # noqa: F401
from flows.sops import flows_in, forget_if_changed
from sopflow import settings

forget_if_changed(settings.sop_dir())
flows_in(settings.sop_dir())  # every SOP compiled once, here, not in each run's process


def run_flow_run(flow_run_id: UUID, env: dict[str, str]) -> None:
    """Run flow run `flow_run_id` in this process; exits 0 when it ends, paused or aborted, non-zero when it crashes."""
    os.environ.update(env)
    forget_if_changed(settings.sop_dir())  # SOP files edited or added since the parent compiled them
    configure_from_env()  # the runner's cancel channel, before any flow code runs
    try:
        with SettingsContext(profile=get_settings_context().profile, settings=Settings()), \
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
