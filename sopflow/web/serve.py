"""Run the intake with uvicorn: `python -m sopflow.web --port 8765 [--workers 2]` (what `sopflow up` starts)."""

from __future__ import annotations

import argparse
import logging

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors import Multiprocess

from sopflow import settings
from sopflow.catalog import sops_started_by
from sopflow.logs import FORMAT, redact_everywhere
from sopflow.web.app import create_app
from sopflow.web.protocol import IntakeConfig


def app_from_settings() -> FastAPI:
    """The intake as the settings describe it, with this process's logs set up (run in every worker)."""
    logging.basicConfig(level=logging.INFO, format=FORMAT)
    redact_everywhere()
    return create_app(settings.intake_token(), sops_started_by("new_lead"), read_timeout=settings.intake_read_timeout())


def uvicorn_config(app: FastAPI | str, host: str, port: int, read_timeout: float, workers: int = 1) -> IntakeConfig:
    """uvicorn's settings for the intake: httptools and uvloop (C parser and event loop), JSON for malformed
    requests, deadlines for headers and bodies, a deep listen backlog. `app` may be an import string of a
    factory (needed for `workers` > 1)."""
    return IntakeConfig(
        app, host=host, port=port, header_timeout=read_timeout, loop="uvloop", lifespan="on", workers=workers,
        factory=isinstance(app, str), backlog=2048, timeout_keep_alive=5, access_log=False, server_header=False,
        log_config=None, proxy_headers=False,  # behind a proxy, run it with --forwarded-allow-ips instead
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sopflow.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on (default 8765)")
    parser.add_argument("--workers", type=int, default=1, help="processes answering requests (default 1)")
    args = parser.parse_args(argv)
    config = uvicorn_config("sopflow.web.serve:app_from_settings", args.host, args.port,
                            settings.intake_read_timeout(), workers=args.workers)
    server = uvicorn.Server(config)
    if config.workers > 1:
        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        server.run()
