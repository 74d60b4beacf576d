"""The door every request passes first: a bounded body, read within a deadline, and JSON for every error.

The body is read whole here, whatever `Content-Length` says (absent, wrong, chunked), before
any route sees it: too large is a 413, too slow a 408, a client gone is nothing at all; in
each case nothing is stored. Every answer that is not a success is logged (method, path without
its query string and with any approval link's token masked, status, time). An exception from a
route is a JSON 500 and one log line naming its type and where it was raised: never its message,
which may quote a lead's data.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from sopflow.logs import redact

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("sopflow.web")


def json_body(detail: object) -> bytes:
    return json.dumps({"detail": detail}).encode()


async def send_json(send: Send, status: int, detail: object, close: bool = False) -> None:
    """A complete JSON answer; `close` ends the connection after it (the rest of the request is not read)."""
    body = json_body(detail)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def where_raised(exc: BaseException) -> str:
    """`file:line in function` of the innermost frame of `exc`'s traceback."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "unknown place"


class Guard:
    """ASGI middleware: bodies of at most `max_body` bytes, arriving within `read_timeout` seconds."""

    def __init__(self, app: ASGIApp, max_body: int, read_timeout: float) -> None:
        self.app, self.max_body, self.read_timeout = app, max_body, read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, answered = time.perf_counter(), [0]

        async def send_and_note(message: Message) -> None:
            if message["type"] == "http.response.start":
                answered[0] = message["status"]
            await send(message)

        try:
            body = await self._read_body(scope, receive, send_and_note)
            if body is not None:
                await self.app(scope, _replay(body, receive), send_and_note)
        except Exception as exc:
            reference = uuid.uuid4().hex[:12]
            log.error("%s %s failed: %s at %s (reference %s)", scope["method"], redact(scope["path"]),
                      type(exc).__name__, where_raised(exc), reference)
            if not answered[0]:
                await send_json(send_and_note, 500, f"internal error (reference {reference}); sending the same "
                                "request again is safe: a lead is stored once per email address", close=True)
        finally:
            if not 200 <= answered[0] < 400:  # a lead stored is in the store; a refusal only here
                log.info("%s %s %s %.1f ms", scope["method"], redact(scope["path"]), answered[0] or "no answer",
                         (time.perf_counter() - started) * 1000)

    async def _read_body(self, scope: Scope, receive: Receive, send: Send) -> bytes | None:
        """The whole body, or None once a 408/413 has been sent or the client has gone."""
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_body:
            await send_json(send, 413, f"the body is larger than {self.max_body} bytes; nothing was stored", close=True)
            return None
        chunks, size = [], 0
        try:
            async with asyncio.timeout(self.read_timeout):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return None
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    if size > self.max_body:
                        await send_json(send, 413, f"the body is larger than {self.max_body} bytes; nothing was stored",
                                        close=True)
                        return None
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            await send_json(send, 408, f"the request body did not arrive within {self.read_timeout:g} s; "
                            "nothing was stored", close=True)
            return None


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands over the body read already, then waits as the server's own does."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay
