"""The intake app: the lead routes, `/unsubscribe`, `/approve/<token>`, `/health`, and the API docs at `/docs`.

A lead is stored and its SOP runs claimed in one transaction; the answer does not wait on Prefect
(the dispatcher of `sopflow up` starts the runs). Every answer, error or not, is JSON, but for the
unsubscribe and approval pages and the docs.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from html import escape
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from sopflow import consent
from sopflow.web.approve import ApproveRoutes
from sopflow.web.guard import Guard
from sopflow.web.leads import SECURITY, BodyInvalid, LeadRoutes, field_errors, operations
from sopflow.web.store import StoreWorker

MAX_BODY = 64 * 1024
DESCRIPTION = ("New leads and their engagement, for sopflow's SOP runs; the unsubscribe links of its emails. "
               "The lead routes take `Authorization: Bearer <SOPFLOW_INTAKE_TOKEN>`.")


def _page(status: int, text: str, button: str | None = None) -> HTMLResponse:
    """The unsubscribe page: a sentence, and a button when it asks to confirm (the button POSTs `button`'s URL)."""
    form = (f'<form method="post" action="{escape(button)}"><button type="submit">Unsubscribe</button></form>'
            if button else "")
    html = (f"<!doctype html><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>Unsubscribe</title><p>{escape(text)}</p>{form}")
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def create_app(intake_token: str | None, new_lead_sops: Sequence[str], read_timeout: float = 10.0) -> FastAPI:
    """The intake: leads start the SOPs in `new_lead_sops`; `intake_token` guards the lead routes (None: 503)."""
    store = StoreWorker(new_lead_sops)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with store.running():
            yield

    app = FastAPI(title="sopflow intake", version="1", description=DESCRIPTION, docs_url=None, redoc_url=None,
                  lifespan=lifespan,  # no OpenTelemetry here: its per-request checks cost 15% of a burst
                  telemetry={"tracing": False, "metrics": False, "logs": False})
    app.add_middleware(Guard, max_body=MAX_BODY, read_timeout=read_timeout)
    app.mount("/docs/assets", StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
    app.router.routes.extend(LeadRoutes(store, intake_token).routes())
    app.router.routes.extend(ApproveRoutes().routes())  # signed approval links: no bearer token, the link is one

    @app.exception_handler(BodyInvalid)
    async def body_invalid(request: Request, exc: BodyInvalid) -> JSONResponse:
        return JSONResponse({"detail": exc.errors}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def request_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": field_errors(exc.errors())}, status_code=422)

    link_errors: dict[int | str, dict[str, Any]] = {400: {"description": "The link is not valid"},
                                                    404: {"description": "Unknown lead"}}

    @app.get("/unsubscribe", response_class=HTMLResponse, responses=link_errors, operation_id="unsubscribe_link")
    async def confirm_unsubscribe(lead: str = "", token: str = "") -> HTMLResponse:
        """The signed link every email carries: a page whose button unsubscribes. Opening it changes nothing,
        so mail scanners that fetch every link unsubscribe nobody. No bearer token needed."""
        found = await store.run(consent.link_status, lead, token)
        return _page(*found, f"/unsubscribe?{urlencode({'lead': lead, 'token': token})}" if found == consent.ASK_TO_CONFIRM else None)

    @app.post("/unsubscribe", response_class=HTMLResponse, responses=link_errors, operation_id="unsubscribe_one_click")
    async def unsubscribe(lead: str = "", token: str = "") -> HTMLResponse:
        """Unsubscribe: the page's button, or RFC 8058 one-click from the mail client. No bearer token needed."""
        return _page(*await store.run(consent.unsubscribe, lead, token))

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="sopflow intake",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png")

    def openapi() -> dict[str, Any]:
        """FastAPI's schema of its own routes, with the lead routes and their bearer token added."""
        if app.openapi_schema is None:
            # 3.0.3: the Swagger UI served locally (swagger-ui-bundle 1.1.0, Swagger UI 4) refuses "3.1.0"
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes,
                                 openapi_version="3.0.3")
            paths, schemas = operations()
            schema["paths"] = {**paths, **schema["paths"]}
            components = schema.setdefault("components", {})
            components.setdefault("schemas", {}).update(schemas)
            components["securitySchemes"] = {SECURITY: {"type": "http", "scheme": "bearer",
                                                        "description": "The value of SOPFLOW_INTAKE_TOKEN"}}
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
