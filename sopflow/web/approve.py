"""`/approve/<token>`: the page a signed approval link opens (GET, changes nothing) and the answer it sends (POST).

No login: the link is the credential, issued to one person for one ask and used once. Pages are plain HTML
without scripts, never cached, never framed, and send no Referer (the token is in the address). Every refusal
is a page of one sentence with a 4xx status; a form that does not fit the step is shown again with a 422,
naming each field. The token never reaches a log line (the guard masks it).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from urllib.parse import parse_qsl

from markdown_it import MarkdownIt
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

from sopflow.approval_links import LinkRefused
from sopflow.forms import FEEDBACK_HELP, input_kind
from sopflow.schema import FormInput
from sopflow.services import link_answers
from sopflow.services.answering import PrefectUnreachable, ResumeFailed
from sopflow.services.connection import PrefectUnavailable

MAX_FIELDS = 100
MAX_NOTES = 4000
FORM_TYPE = "application/x-www-form-urlencoded"
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Frame-Options": "DENY",
           "X-Content-Type-Options": "nosniff",
           "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                                      "frame-ancestors 'none'"}
STYLE = ("body{font:15px/1.45 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}"
         "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.2rem .5rem}"
         "label{display:block;margin-top:.8rem;font-weight:600}.problem{color:#a00}textarea{width:100%}")
_MARKDOWN = MarkdownIt("commonmark", {"html": False}).enable("table")  # raw HTML in the text stays text


def page(status: int, body: str, title: str = "Approval") -> HTMLResponse:
    html = (f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
            f"<title>{escape(title)}</title><style>{STYLE}</style><body>{body}</body></html>")
    return HTMLResponse(html, status_code=status, headers=HEADERS)


def sentence(status: int, text: str) -> HTMLResponse:
    return page(status, f"<p>{escape(text)}</p>")


def _field(name: str, spec: FormInput, value: str) -> str:
    required = " required" if spec.required else ""
    label = f"<label for='in-{escape(name)}'>{escape(spec.label)} ({escape(input_kind(spec))})</label>"
    if spec.type in ("choice", "yes_no"):
        options = spec.choices or ["yes", "no"]
        chosen = "".join(f"<option{' selected' if option == value else ''}>{escape(option)}</option>"
                         for option in options)
        return (f"{label}<select id='in-{escape(name)}' name='{escape(name)}'{required}><option value=''></option>"
                f"{chosen}</select>")
    kind = {"number": "number' step='any", "integer": "number' step='1", "month": "month"}.get(spec.type, "text")
    bounds = "".join(f" {attr}='{bound:g}'" for attr, bound in (("min", spec.minimum), ("max", spec.maximum))
                     if bound is not None)
    return (f"{label}<input id='in-{escape(name)}' name='{escape(name)}' type='{kind}'{bounds}{required} "
            f"value='{escape(value)}'>")


def form_page(shown: link_answers.LinkView, values: dict[str, str], problems: Sequence[tuple[str, str]] = ()) -> str:
    """The ask as the Prefect UI's form shows it, then its fields; `problems` listed above, each naming its field."""
    listed = "".join(f"<li>{escape(name)}: {escape(reason)}</li>" for name, reason in problems)
    decision = values.get("decision", "")
    choices = "".join(f"<label><input type=radio name=decision value={option} required"
                      f"{' checked' if decision == option else ''}> {option}</label>"
                      for option in ("approve", "reject"))
    inputs = "".join(_field(name, spec, values.get(name, "")) for name, spec in shown.step.inputs.items())
    return (
        (f"<div class=problem><p>Nothing was sent; fix these and answer again:</p><ul>{listed}</ul></div>"
         if problems else "")
        + _MARKDOWN.render(shown.description)
        + f"<hr><p>You answer as <strong>{escape(shown.person)}</strong>: this link is yours alone and answers once, "
          f"until {_when(shown.expires_at)}.</p>"
        + "<form method=post>" + f"<fieldset><legend>Decision</legend>{choices}</fieldset>" + inputs
        + f"<label for=notes>Notes</label><textarea id=notes name=notes rows=4 maxlength={MAX_NOTES}>"
          f"{escape(values.get('notes', ''))}</textarea>"
        + f"<label for=feedback>Feedback</label><textarea id=feedback name=feedback rows=2 placeholder='"
          f"{escape(FEEDBACK_HELP)}'>{escape(values.get('feedback', ''))}</textarea>"
        + "<p><button type=submit>Send my answer</button></p></form>"
    )


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


class FormRefused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status, self.text = status, text


def read_form(request: Request, body: bytes) -> dict[str, str]:
    """The posted fields, each once; FormRefused (415, 400) for a body that is not a plain HTML form."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != FORM_TYPE:
        raise FormRefused(415, f"Send the answer as the page's form does ({FORM_TYPE}); nothing was changed.")
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=MAX_FIELDS)
    except (UnicodeDecodeError, ValueError):
        raise FormRefused(400, f"The form could not be read (not UTF-8, or more than {MAX_FIELDS} fields); "
                               "nothing was changed.") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        if name in fields:
            raise FormRefused(400, f"The field {name[:40]!r} came more than once; send each field once.")
        fields[name] = value
    return fields


def _problems(fields: dict[str, str]) -> list[tuple[str, str]]:
    """What is wrong with the decision and notes fields, before the step's own inputs are judged."""
    problems = []
    if fields.get("decision") not in ("approve", "reject"):
        problems.append(("decision", "choose approve or reject"))
    if len(fields.get("notes", "")) > MAX_NOTES:
        problems.append(("notes", f"at most {MAX_NOTES} characters"))
    return problems


class ApproveRoutes:
    """GET and POST /approve/{token}; any other method is a 405 page."""

    def routes(self) -> list[Route]:
        return [Route("/approve/{token:path}", self.dispatch,
                      methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"])]

    async def dispatch(self, request: Request) -> HTMLResponse:
        token = request.path_params["token"]
        if request.method in ("GET", "HEAD"):
            return await self.show(token)
        if request.method == "POST":
            return await self.answer(request, token)
        response = sentence(405, "An approval link is opened (GET) and answered with its page's form (POST) only.")
        response.headers["Allow"] = "GET, HEAD, POST"
        return response

    async def show(self, token: str) -> HTMLResponse:
        try:
            shown = await run_in_threadpool(link_answers.view, token)
        except LinkRefused as refused:
            return sentence(refused.status, refused.sentence)
        return page(200, form_page(shown, {}))

    async def answer(self, request: Request, token: str) -> HTMLResponse:
        try:
            fields = read_form(request, await request.body())
        except FormRefused as refused:
            return sentence(refused.status, refused.text)
        own = {"decision", "notes", "feedback"}
        given = {name: value for name, value in fields.items() if name not in own and value != ""}
        try:
            if problems := _problems(fields):  # a refused link is still refused first
                raise link_answers.AnswerInvalid(await run_in_threadpool(link_answers.view, token), problems)
            shown = await run_in_threadpool(link_answers.answer, token, fields["decision"], fields.get("notes", ""),
                                            fields.get("feedback", ""), given)
        except LinkRefused as refused:
            return sentence(refused.status, refused.sentence)
        except link_answers.AnswerInvalid as invalid:
            return page(422, form_page(invalid.view, fields, invalid.problems))
        except (PrefectUnreachable, PrefectUnavailable):
            return sentence(503, "Your answer could not be passed on to the run just now, so nothing was recorded "
                                 "and the link still works; try again in a minute.")
        except ResumeFailed:  # lasting: the run is gone, moved on or refused the answer
            return sentence(409, "The run of this approval is no longer waiting for this answer, so nothing was "
                                 "recorded; check the approval in the Prefect UI.")
        return sentence(200, f"Thank you, {shown.person}: your answer ({fields['decision']}) is recorded and "
                             f"{shown.sop_id} goes on.")
