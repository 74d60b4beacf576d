"""uvicorn's HTTP/1.1 protocol (httptools), answering in JSON and with a deadline for request headers.

uvicorn answers a malformed request (a negative or non-numeric `Content-Length`, a broken chunk)
with a plain-text 400, takes headers of any size, and waits for headers that never finish for as
long as the client likes. Here each is a JSON answer, after which the connection is closed.
"""

from __future__ import annotations

import asyncio
from http import HTTPStatus
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from sopflow.web.guard import json_body

MAX_HEAD = 32 * 1024  # request line and headers; httptools itself sets no limit


def raw_json_answer(status: HTTPStatus, detail: str) -> bytes:
    """A whole HTTP/1.1 JSON answer that closes the connection, as bytes for the transport."""
    body = json_body(detail)
    head = (f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n")
    return head.encode() + body


class IntakeProtocol(HttpToolsProtocol):
    """Closes, with a JSON 408, a connection whose request headers are not complete `header_timeout` s after
    they begin, and with a JSON 431 one whose headers grow past MAX_HEAD bytes."""

    def __init__(self, config: IntakeConfig, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self.header_timeout = config.header_timeout
        self.access_log = False  # uvicorn's access line holds the query string (unsubscribe tokens); the guard logs

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._header_timer: asyncio.TimerHandle | None = None
        self._head_bytes = 0
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        if self._awaiting_headers():
            self._head_bytes += len(data)
        super().data_received(data)
        if self._awaiting_headers() and self._head_bytes > MAX_HEAD and not self.transport.is_closing():
            self._answer_and_close(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
                                   f"the request line and headers exceed {MAX_HEAD} bytes; nothing was stored")
        elif self._header_timer is None and self._awaiting_headers():
            self._arm_header_timer()

    def on_headers_complete(self) -> None:
        self._head_bytes = 0
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(HTTPStatus.BAD_REQUEST, "malformed HTTP request (request line, headers, "
                               "Content-Length or chunked encoding); nothing was stored")

    def _awaiting_headers(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _arm_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self.header_timeout, self._headers_late, self.cycle)

    def _headers_late(self, cycle_when_armed: Any) -> None:
        self._header_timer = None
        if self.cycle is cycle_when_armed and self._awaiting_headers() and not self.transport.is_closing():
            self._answer_and_close(HTTPStatus.REQUEST_TIMEOUT, f"the request headers did not arrive within "
                                   f"{self.header_timeout:g} s; nothing was stored")

    def _answer_and_close(self, status: HTTPStatus, detail: str) -> None:
        self.transport.write(raw_json_answer(status, detail))
        self.transport.close()


class IntakeConfig(uvicorn.Config):
    """uvicorn's settings, with the deadline for request headers that IntakeProtocol enforces."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, http=IntakeProtocol, **kwargs)
        self.header_timeout = header_timeout
