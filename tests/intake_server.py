"""The real intake (FastAPI app, uvicorn with httptools and uvloop, sopflow's protocol) in a thread, for tests."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import uvicorn

from sopflow.web.app import create_app
from sopflow.web.serve import uvicorn_config


@contextmanager
def running_intake(token: str | None = "s3cret", sops: Sequence[str] = ("lead-qualification",),
                   read_timeout: float = 1.0) -> Iterator[str]:
    """Serve the intake on a free port of 127.0.0.1, storing in the configured store; yield its base URL."""
    app = create_app(token, sops, read_timeout=read_timeout)
    server = uvicorn.Server(uvicorn_config(app, "127.0.0.1", 0, read_timeout))
    thread = threading.Thread(target=server.run, name="test-intake", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the intake did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@dataclass(frozen=True)
class RawAnswer:
    """What came back on a raw connection: status, headers (lowercase names) and body; status None if nothing did."""

    status: int | None
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> Any:
        assert self.headers.get("content-type", "").startswith("application/json"), self
        return json.loads(self.body)


def send_raw(base_url: str, *parts: bytes, pause: float = 0.0, wait: float = 10.0, shut_write: bool = False) -> RawAnswer:
    """Send `parts` on one new connection (`pause` seconds apart), then read until the server closes or `wait` passes.

    `shut_write` closes our sending side afterwards, as a client that gave up half-way would.
    """
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=wait) as sock:
        for index, part in enumerate(parts):
            if index and pause:
                time.sleep(pause)
            try:
                sock.sendall(part)
            except OSError:  # the server answered and closed before taking it all
                break
        if shut_write:
            sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65536):
                received += chunk
                if _complete(received):
                    break
        except (TimeoutError, ConnectionResetError):
            pass
    return _parse(received, time.monotonic() - started)


def _complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return length is not None and len(body) >= int(length.group(1))


def _parse(data: bytes, seconds: float) -> RawAnswer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    if not data or not lines[0].startswith("HTTP/1."):
        return RawAnswer(None, {}, data, seconds)
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if ": " in line)
    return RawAnswer(int(lines[0].split()[1]), headers, body, seconds)
