"""HTTP intake for leads: `POST /leads` with a bearer token (Prefect OSS has no incoming webhooks).

`POST /leads/<lead id>/engagement` with `{"event": "opened|replied|meeting|visit"}` (same token)
records what a lead did; scoring counts recent events. `GET|POST /unsubscribe?lead=..&token=..`
is the signed link every email carries (POST is RFC 8058 one-click); it needs no bearer token.
"""

from __future__ import annotations

import hmac
import json
import re
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qs, unquote, urlsplit

import pydantic

from sopflow.leads import LeadIn

MAX_BODY = 64 * 1024
SubmitLead = Callable[[LeadIn], dict[str, Any]]
ENGAGEMENT_PATH = re.compile(r"/leads/(?P<lead_id>[^/?#]+)/engagement")


class EngagementIn(pydantic.BaseModel):
    """An engagement event as POSTed to /leads/<id>/engagement: `{"event": "replied"}`."""

    model_config = pydantic.ConfigDict(extra="forbid")
    event: Literal["opened", "replied", "meeting", "visit"]


Reply = tuple[int, Any]
M = TypeVar("M", bound=pydantic.BaseModel)


def parse_body(model: type[M], body: bytes) -> M | Reply:
    """The body as `model`, or the 422 reply listing what is wrong with it."""
    try:
        return model.model_validate(json.loads(body or b"null"))
    except json.JSONDecodeError as exc:
        return 422, {"detail": [{"loc": [], "msg": f"body is not JSON: {exc.msg}"}]}
    except pydantic.ValidationError as exc:
        return 422, {"detail": [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]}


def record_engagement(lead_id: str, body: bytes) -> Reply:
    """Store one engagement event of a lead: 201 and the event; 422 (nothing stored) or 404 when unknown lead."""
    from sopflow.store import engagement
    from sopflow.store.db import transaction

    event_in = parse_body(EngagementIn, body)
    if isinstance(event_in, tuple):
        return event_in
    try:
        with transaction() as session:
            event = engagement.record(session, lead_id, event_in.event, source="intake")
            return 201, {"id": event.id, "lead_id": lead_id, "event": event.kind,
                         "occurred_at": event.occurred_at.isoformat()}
    except LookupError:
        return 404, {"detail": f"no lead has id {lead_id!r}; POST the lead to /leads first"}


def unsubscribe(query: str) -> tuple[int, str]:
    """Honour a signed unsubscribe link: the lead is never emailed again. Returns (status, page text)."""
    from sopflow.consent import token_is_valid
    from sopflow.store.db import transaction
    from sopflow.store.models import Lead, utcnow

    params = parse_qs(query)
    lead_id, token = params.get("lead", [""])[0], params.get("token", [""])[0]
    if not (lead_id and token and token_is_valid(lead_id, token)):
        return 400, "This unsubscribe link is not valid. Reply to the email and we will remove you by hand."
    with transaction() as session:
        lead = session.get(Lead, lead_id)
        if lead is None:
            return 404, "We have no record of this address any more; you will not hear from us."
        lead.unsubscribed_at = lead.unsubscribed_at or utcnow()
    return 200, "You are unsubscribed: you will not receive more emails from our sales team."


def make_server(host: str, port: int, token: str | None, submit: SubmitLead) -> ThreadingHTTPServer:
    """An intake server that validates each lead and hands it to `submit`; nothing is stored on bad input.

    Without a token, unsubscribe links still work and the lead endpoints answer 503.
    """

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
            path = urlsplit(self.path)
            if path.path.rstrip("/") == "/unsubscribe":
                return self._page(*unsubscribe(path.query))
            engaged = ENGAGEMENT_PATH.fullmatch(self.path.rstrip("/"))
            if self.path.rstrip("/") != "/leads" and engaged is None:
                return self._reply(404, {"detail": "not found; POST leads to /leads, events to /leads/<id>/engagement"})
            if token is None:
                return self._reply(503, {"detail": "the lead intake is off; set SOPFLOW_INTAKE_TOKEN and restart"})
            supplied = self.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(supplied.encode(), token.encode()):
                return self._reply(401, {"detail": "missing or wrong bearer token"})
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                return self._reply(413, {"detail": f"body larger than {MAX_BODY} bytes"})
            if engaged is not None:
                return self._reply(*record_engagement(unquote(engaged["lead_id"]), self.rfile.read(length)))
            lead = parse_body(LeadIn, self.rfile.read(length))
            if isinstance(lead, tuple):
                return self._reply(*lead)
            outcome = submit(lead)
            return self._reply(202 if "not_started" in outcome else 201, outcome)

        def do_GET(self) -> None:  # noqa: N802
            path = urlsplit(self.path)
            if path.path.rstrip("/") == "/unsubscribe":
                return self._page(*unsubscribe(path.query))
            self._reply(200 if self.path == "/health" else 404, {"status": "ok"} if self.path == "/health" else {})

        def _page(self, status: int, text: str) -> None:
            data = f"<!doctype html><meta charset=utf-8><title>Unsubscribe</title><p>{text}</p>".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

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
