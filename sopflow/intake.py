"""HTTP intake for leads: `POST /leads` with a bearer token (Prefect OSS has no incoming webhooks)."""

from __future__ import annotations

import hmac
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pydantic

from sopflow.leads import LeadIn

MAX_BODY = 64 * 1024
SubmitLead = Callable[[LeadIn], dict[str, Any]]


def make_server(host: str, port: int, token: str, submit: SubmitLead) -> ThreadingHTTPServer:
    """An intake server that validates each lead and hands it to `submit`; nothing is stored on bad input."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            if self.path.rstrip("/") != "/leads":
                return self._reply(404, {"detail": "not found; POST leads to /leads"})
            supplied = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(supplied.encode(), token.encode()):
                return self._reply(401, {"detail": "missing or wrong bearer token"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._reply(413, {"detail": f"body larger than {MAX_BODY} bytes"})
            try:
                lead = LeadIn.model_validate(json.loads(self.rfile.read(length) or b"null"))
            except json.JSONDecodeError as exc:
                return self._reply(422, {"detail": [{"loc": [], "msg": f"body is not JSON: {exc.msg}"}]})
            except pydantic.ValidationError as exc:
                errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
                return self._reply(422, {"detail": errors})
            outcome = submit(lead)
            return self._reply(202 if "not_started" in outcome else 201, outcome)

        def do_GET(self) -> None:  # noqa: N802
            self._reply(200 if self.path == "/health" else 404, {"status": "ok"} if self.path == "/health" else {})

        def _reply(self, status: int, body: Any) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # request lines may carry personal data
            pass

    return ThreadingHTTPServer((host, port), Handler)


def serve_in_thread(server: ThreadingHTTPServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="sopflow-intake", daemon=True)
    thread.start()
    return thread
