"""A real local HTTP endpoint that records what webhooks POST, dedupes on Idempotency-Key
like a provider would, and can be told to fail the next N requests with 503."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Recorder:
    """What the endpoint saw: every attempt, and the accepted (deduplicated) requests."""

    attempts: list[Recorded] = field(default_factory=list)
    accepted: dict[str, Recorded] = field(default_factory=dict)
    fail_next: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def accepted_on(self, path: str) -> list[Recorded]:
        with self.lock:
            return [r for r in self.accepted.values() if r.path == path]


def start_recorder() -> tuple[Recorder, ThreadingHTTPServer]:
    recorder = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null")
            seen = Recorded(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with recorder.lock:
                recorder.attempts.append(seen)
                failing = recorder.fail_next > 0
                recorder.fail_next -= 1 if failing else 0
                key = seen.headers.get("idempotency-key") or f"no-key-{len(recorder.attempts)}"
                if not failing:
                    recorder.accepted.setdefault(key, seen)
            status = 503 if failing else 200
            data = json.dumps({"id": key} if not failing else {"error": "try later"}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return recorder, server
