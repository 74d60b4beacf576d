"""`sopflow up`: a local Prefect server (unless PREFECT_API_URL is set), the intake, and every SOP served."""

from __future__ import annotations

import os
import signal
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

from prefect.context import SettingsContext
from prefect.settings import PREFECT_API_URL, temporary_settings

from sopflow import settings
from sopflow.catalog import load_all
from sopflow.intake import SubmitLead, make_server, serve_in_thread
from sopflow.leads import LeadIn


def run_up(port: int, intake_port: int, say: Callable[[str], None] = partial(print, flush=True)) -> None:
    """Bring sopflow up and block until Ctrl-C; stop everything started here on the way out."""
    sops = load_all()  # raises SopInvalid before anything starts: nothing deploys while a SOP is invalid
    # Ctrl-C and SIGTERM both stop everything started here, even if the parent shell ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    with ExitStack() as stack:
        api_url = settings.prefect_api_url()
        if api_url is None:
            from deployments.server import local_server

            home = settings.home()
            home.mkdir(parents=True, exist_ok=True)
            say(f"Starting a local Prefect server on SQLite under {home} ...")
            api_url = stack.enter_context(local_server(home, port))
            settings.api_url_file().write_text(api_url)  # so other sopflow commands find this server
            stack.callback(settings.api_url_file().unlink, missing_ok=True)
        os.environ["PREFECT_API_URL"] = api_url  # flow-run subprocesses inherit it
        stack.enter_context(temporary_settings(updates={PREFECT_API_URL: api_url}))

        from deployments.dispatch import start_pending, submit_lead
        from deployments.serve import serve_sops, sop_deployments

        deployments = sop_deployments()
        for deployment in deployments:  # registered before serving, so runs claimed earlier can start now
            deployment.apply()
        waiting = start_pending()
        if waiting:
            say(f"Started {len(waiting)} SOP run(s) claimed while Prefect was unreachable.")
        token = settings.intake_token()
        intake = make_server("127.0.0.1", intake_port, token, _in_settings_of_this_thread(submit_lead))
        serve_in_thread(intake)
        stack.callback(intake.shutdown)
        if token:
            say(f"Lead intake: POST http://127.0.0.1:{intake_port}/leads (bearer token from SOPFLOW_INTAKE_TOKEN)")
        else:
            say(f"Lead intake: off (set SOPFLOW_INTAKE_TOKEN); unsubscribe links served on port {intake_port}")
        say(f"Prefect UI: {settings.ui_url() or api_url.removesuffix('/api')}")
        say(f"Serving {len(sops)} SOP(s): {', '.join(sorted(sops))}. Ctrl-C stops everything.")
        stack.callback(say, "sopflow stopped.")
        try:
            serve_sops(deployments)
        except KeyboardInterrupt:
            pass


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def _in_settings_of_this_thread(submit: SubmitLead) -> SubmitLead:
    """Prefect's settings live in a context variable; intake threads need this thread's API URL."""
    context = SettingsContext.get()

    def submit_here(lead: LeadIn) -> dict[str, Any]:
        with context.model_copy():  # a copy per request: entering a context is not thread-safe
            return submit(lead)

    return submit_here
