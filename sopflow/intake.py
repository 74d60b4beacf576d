"""HTTP intake for leads: `POST /leads` with a bearer token (Prefect OSS has no incoming webhooks).

`POST /leads/<lead id>/engagement` with `{"event": "opened|replied|meeting|visit"}` (same token)
records what a lead did; scoring counts recent events.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import unquote

import pydantic

from sopflow.leads import LeadIn

MAX_BODY = 64 * 1024
SubmitLead = Callable[[LeadIn], dict[str, Any]]
ENGAGEMENT_PATH = re.compile(r"/leads/(?P<lead_id>[^/?#]+)/engagement")


class EngagementIn(pydantic.BaseModel):
    """An engagement event as POSTed to /leads/<id>/engagement: `{"event": "replied"}`."""

    model_config = pydantic.ConfigDict(extra="forbid")
    event: Literal["opened", "replied", "meeting", "visit"]


def record_engagement(lead_id: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """Store one engagement event of a lead: 201 and the event; 422 (nothing stored) or 404 when unknown lead."""
    from sopflow.store import engagement
    from sopflow.store.db import transaction

    try:
        event_in = EngagementIn.model_validate(json.loads(body or b"null"))
    except json.JSONDecodeError as exc:
        return 422, {"detail": [{"loc": [], "msg": f"body is not JSON: {exc.msg}"}]}
    except pydantic.ValidationError as exc:
        return 422, {"detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]}
    try:
        with transaction() as session:
            event = engagement.record(session, lead_id, event_in.event, source="intake")
            return 201, {"id": event.id, "lead_id": lead_id, "event": event.kind,
                         "occurred_at": event.occurred_at.isoformat()}
    except LookupError:
        return 404, {"detail": f"no lead has id {lead_id!r}; POST the lead to /leads first"}


def make_server(host: str, port: int, token: str, submit: SubmitLead) -> ThreadingHTTPServer:
    """An intake server that validates each lead and hands it to `submit`; nothing is stored on bad input."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            engaged = ENGAGEMENT_PATH.fullmatch(self.path.rstrip("/"))
            if self.path.rstrip("/") != "/leads" and engaged is None:
                return self._reply(404, {"detail": "not found; POST leads to /leads, events to /leads/<id>/engagement"})
            supplied = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(supplied.encode(), token.encode()):
                return self._reply(401, {"detail": "missing or wrong bearer token"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._reply(413, {"detail": f"body larger than {MAX_BODY} bytes"})
            if engaged is not None:
                return self._reply(*record_engagement(unquote(engaged["lead_id"]), self.rfile.read(length)))
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
