"""`sopflow up`: a local Prefect server (unless PREFECT_API_URL is set), the intake, the dispatcher, the
housekeeper, every SOP served."""

from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Callable
from contextlib import ExitStack
from functools import partial
from typing import Any

from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_URL, temporary_settings

from sopflow import settings
from sopflow.capacity import check_capacity
from sopflow.catalog import load_all
from sopflow.errors import SopInvalid
from sopflow.logs import log_to_stderr
from sopflow.services.api_ca_file import plain_http_ca_setting
from sopflow.store.schema_version import upgrade


def run_up(port: int, intake_port: int, pool: str | None = None,
           say: Callable[[str], None] = partial(print, flush=True)) -> None:
    """Bring sopflow up and block until Ctrl-C; stop everything started here on the way out.

    With `pool`, the flows are deployed into that process work pool for workers to run, not served here.
    """
    try:  # settings refused before anything starts
        settings.flow_run_slots(), settings.intake_workers(), settings.prefect_database_url()
    except ValueError as exc:
        raise RuntimeError(str(exc)) from None
    if (store := upgrade(settings.database_url())).changed:  # the store at this sopflow's schema before anything runs
        say(str(store))
    sops = load_all(against_store=True)  # SopInvalid before anything starts: nothing deploys while a SOP is invalid
    planning = check_capacity([settings.sop_dir()], list(sops.values()))  # nor while the S&OP capacity file is
    if planning:
        raise SopInvalid(planning)
    for warning in sorted(w for loaded in sops.values() for w in loaded.warnings):
        print(warning, file=sys.stderr, flush=True)
    log_to_stderr("deployments", "sopflow")
    # Ctrl-C and SIGTERM both stop everything started here, even if the parent shell ignored SIGINT.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _interrupt)
    home = settings.home()
    home.mkdir(parents=True, exist_ok=True)
    settings.secret_key()  # made once, before the processes that sign and check unsubscribe links start
    with ExitStack() as stack:
        from deployments.server import intake_server, local_server

        api_url, auth = settings.prefect_api_url(), settings.prefect_auth_string()
        if api_url and not os.environ.get("PREFECT_API_URL") and not _answers(api_url):
            settings.api_url_file().unlink(missing_ok=True)  # left by a `sopflow up` that was killed: start anew
            api_url = None
        started_here = api_url is None
        if started_here:
            say(f"Starting a local Prefect server on {_prefect_database()} ...")
            auth = settings.prefect_server_auth_string()
            api_url = stack.enter_context(local_server(home, port))
            settings.api_url_file().write_text(api_url)  # so other sopflow commands find this server
            stack.callback(settings.api_url_file().unlink, missing_ok=True)
        else:
            from sopflow.services.connection import require_prefect

            require_prefect(api_url)
        os.environ["PREFECT_API_URL"] = api_url  # flow-run subprocesses inherit the server and its login
        updates: dict[Any, str] = {PREFECT_API_URL: api_url}
        if auth:
            os.environ["PREFECT_API_AUTH_STRING"] = updates[PREFECT_API_AUTH_STRING] = auth
        stack.enter_context(temporary_settings(updates={**updates, **plain_http_ca_setting(api_url)}))

        from deployments.dispatcher import Dispatcher
        from deployments.serve import serve_sops, sop_deployments, sop_runner
        from deployments.warm_start import warm_up
        from sopflow.jobaid import publish_job_aids

        runner = None
        if pool:  # registered before the dispatcher starts runs claimed earlier
            from deployments.pool import deploy_to_pool

            deploy_to_pool(pool)
        else:
            warm_up()  # the flow runs' parent imports Prefect and the flows while the rest starts
            deployments = sop_deployments()
            for deployment in deployments:
                deployment.apply()
            runner = sop_runner(deployments)
        publish_job_aids(sops.values())  # the UI's Artifacts page shows each SOP's current job aid
        dispatcher = Dispatcher(sops, **({"wake_runner": runner.wake, "ahead": 2 * settings.flow_run_slots()}
                                         if runner else {}))
        dispatcher.start()
        stack.callback(dispatcher.stop)
        settings.dispatcher_port_file().write_text(str(dispatcher.port))  # where the intake and the CLI nudge it
        stack.callback(settings.dispatcher_port_file().unlink, missing_ok=True)
        intake_url = stack.enter_context(intake_server(home, intake_port))
        os.environ.setdefault("SOPFLOW_PUBLIC_URL", intake_url)  # links in emails reach this intake unless set
        settings.public_url_file().write_text(settings.public_url())  # and those a worker sharing this home sends
        stack.callback(settings.public_url_file().unlink, missing_ok=True)
        from deployments.housekeeper import Housekeeper

        housekeeper = Housekeeper()  # overdue approval actions, approval notices to send again
        housekeeper.start()
        stack.callback(housekeeper.stop)
        if settings.intake_token():
            say(f"Lead intake: POST {intake_url}/leads (bearer token from SOPFLOW_INTAKE_TOKEN); API docs at {intake_url}/docs")
        else:
            say(f"Lead intake: off (set SOPFLOW_INTAKE_TOKEN); unsubscribe links served at {intake_url}")
        ui = settings.ui_url() or api_url.removesuffix("/api")
        if started_here:
            login = "PREFECT_SERVER_API_AUTH_STRING" if os.environ.get("PREFECT_SERVER_API_AUTH_STRING") \
                else f"the line in {settings.prefect_auth_file()}"
            ui += f" (log in with {login})"
        say(f"Prefect UI: {ui}")
        say(f"Logs: {home / 'intake.log'}, {home / 'prefect-server.log'}")
        names = ", ".join(sorted(sops))
        say(f"{len(sops)} SOP(s) deployed into work pool {pool!r}: {names}; workers run them (`prefect worker start "
            f"--pool {pool}`). Ctrl-C stops everything." if pool else
            f"Serving {len(sops)} SOP(s): {names}. Ctrl-C stops everything.")
        stack.callback(say, "sopflow stopped.")
        try:
            threading.Event().wait() if runner is None else serve_sops(runner)
        except KeyboardInterrupt:
            pass


def _answers(api_url: str) -> bool:
    """Whether a Prefect server answers at `api_url`'s health check."""
    import httpx

    try:
        return httpx.get(f"{api_url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _prefect_database() -> str:
    """Where the Prefect server `sopflow up` starts keeps its data, for people (no password)."""
    url = settings.prefect_database_url()
    if url is None:
        return f"SQLite under {settings.home()}"
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return f"PostgreSQL ({parsed.host or 'localhost'}:{parsed.port or 5432}/{parsed.database})"


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt
