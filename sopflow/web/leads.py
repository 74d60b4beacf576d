"""The lead routes, `POST /leads` and `POST /leads/{lead_id}/engagement`, as plain Starlette endpoints.

They are the hot path of a burst, so they skip FastAPI's per-request dependency and validation
machinery (about a quarter of the intake's time per request, measured with benchmarks/intake.py).
Bodies are validated by the same pydantic models as the CLI's input, straight from the JSON bytes
(pydantic's parser bounds nesting and number sizes); `operations()` documents both routes in the
app's OpenAPI. Errors are `{"detail": ...}`: a sentence, or for 422 a list of `{"loc", "msg", "type"}`
that never echoes the input back.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from typing import Any, Literal, TypeVar

import pydantic
from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError
from starlette.routing import Route

from sopflow.leads import LeadIn, is_lead_id
from sopflow.store import engagement
from sopflow.store.db import transaction
from sopflow.text import validation_message
from sopflow.web.store import StoreWorker

M = TypeVar("M", bound=pydantic.BaseModel)
SECURITY = "intakeToken"


class EngagementIn(pydantic.BaseModel):
    """An engagement event of a lead: `{"event": "replied"}`."""

    model_config = pydantic.ConfigDict(extra="forbid")
    event: Literal["opened", "replied", "meeting", "visit"]


class BodyInvalid(Exception):
    """The body is not what the route takes: `errors` as the 422 answer lists them."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        self.errors = errors


def field_errors(errors: Sequence[Any]) -> list[dict[str, Any]]:
    """pydantic's errors as the intake answers them: where, what, which rule; never the input itself."""
    answer = []
    for error in errors:
        message = validation_message(error)
        if error["type"] == "json_invalid":
            message = f"body is not JSON: {message.removeprefix('Invalid JSON: ')}"
        answer.append({"loc": [part for part in error["loc"] if part != "body"], "msg": message, "type": error["type"]})
    return answer


def parse(model: type[M], body: bytes) -> M:
    """The body as `model`, or BodyInvalid (a 422) listing what is wrong with it."""
    try:
        return model.model_validate_json(body or b"null")
    except pydantic.ValidationError as exc:
        raise BodyInvalid(field_errors(exc.errors())) from None


def _record_engagement(lead_id: str, event: str) -> dict[str, Any]:
    with transaction() as session:
        row = engagement.record(session, lead_id, event, source="intake")
        return {"id": row.id, "lead_id": lead_id, "event": row.kind, "occurred_at": row.occurred_at.isoformat()}


class LeadRoutes:
    """The two routes behind the bearer token, storing through `store`."""

    def __init__(self, store: StoreWorker, intake_token: str | None) -> None:
        self.store, self.intake_token = store, intake_token

    def routes(self) -> list[Route]:
        return [Route("/leads", self.post_lead, methods=["POST"]),
                Route("/leads/{lead_id}/engagement", self.post_engagement, methods=["POST"])]

    def _authorize(self, request: Request) -> None:
        if self.intake_token is None:
            raise HTTPException(503, "the lead intake is off; set SOPFLOW_INTAKE_TOKEN and restart `sopflow up`")
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                given.strip().encode("utf-8", "surrogatepass"), self.intake_token.encode()):
            raise HTTPException(401, "missing or wrong bearer token; send `Authorization: Bearer <SOPFLOW_INTAKE_TOKEN>`",
                                headers={"WWW-Authenticate": "Bearer"})

    async def post_lead(self, request: Request) -> JSONResponse:
        self._authorize(request)
        lead = parse(LeadIn, await request.body())
        try:
            admitted = await self.store.admit(lead)
        except OperationalError:
            raise HTTPException(503, "the store is busy or unreachable; nothing was stored; send the lead again shortly",
                                headers={"Retry-After": "5"}) from None
        return JSONResponse(admitted.as_json(), status_code=201 if admitted.created else 200)

    async def post_engagement(self, request: Request) -> JSONResponse:
        self._authorize(request)
        event, lead_id = parse(EngagementIn, await request.body()), request.path_params["lead_id"]
        try:
            if not is_lead_id(lead_id):
                raise LookupError(lead_id)
            return JSONResponse(await self.store.run(_record_engagement, lead_id, event.event), status_code=201)
        except LookupError:
            raise HTTPException(404, "no lead has this id; POST the lead to /leads first and use the id it answers") from None


def _errors(*statuses: int) -> dict[str, Any]:
    described = {
        401: "Missing or wrong bearer token", 404: "No lead has this id", 408: "The request did not arrive in time",
        413: "Body larger than 64 KiB", 422: "The body is not valid: `detail` lists each field's problem",
        503: "The intake is off (no SOPFLOW_INTAKE_TOKEN) or the store is unavailable",
    }
    return {str(status): {"description": described[status]} for status in statuses}


def operations() -> tuple[dict[str, Any], dict[str, Any]]:
    """OpenAPI for the lead routes: (paths, component schemas)."""
    def body(model: type[pydantic.BaseModel]) -> dict[str, Any]:
        ref = {"$ref": f"#/components/schemas/{model.__name__}"}
        return {"required": True, "content": {"application/json": {"schema": ref}}}

    admitted = {"description": "The lead's id, whether it is new, and its claimed SOP runs (`flow_run_id` is null "
                               "until the dispatcher has started the run)"}
    paths = {
        "/leads": {"post": {
            "summary": "Add a lead", "operationId": "post_lead", "security": [{SECURITY: []}],
            "description": "Store a lead once per email address and claim one run of every SOP that starts on new "
                           "leads, in one transaction; the answer does not wait on Prefect.",
            "requestBody": body(LeadIn),
            "responses": {"201": admitted, "200": {"description": "A lead with this email was stored before: its id "
                                                                  "and runs, unchanged"},
                          **_errors(401, 408, 413, 422, 503)},
        }},
        "/leads/{lead_id}/engagement": {"post": {
            "summary": "Record engagement", "operationId": "post_engagement", "security": [{SECURITY: []}],
            "description": "Record what a lead did (opened, replied, meeting, visit); engagement score rules count "
                           "recent events.",
            "parameters": [{"name": "lead_id", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": body(EngagementIn),
            "responses": {"201": {"description": "The event as stored"}, **_errors(401, 404, 408, 413, 422, 503)},
        }},
    }
    return paths, {model.__name__: model.model_json_schema() for model in (LeadIn, EngagementIn)}
