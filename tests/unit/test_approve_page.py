"""`/approve/<token>` on the real intake (uvicorn, sopflow's protocol and guard): opening a link changes nothing,
answering sends the link's person's answer once, and hostile requests get a 4xx page saying why."""

from __future__ import annotations

import logging
import re
from html import unescape

import httpx
import pytest
from sqlalchemy import select

from sopflow import approval_links
from sopflow.services import link_answers
from sopflow.services.answering import PrefectUnreachable, ResumeFailed
from sopflow.store.db import transaction
from sopflow.store.models import Approval, ApprovalLink, SopRun
from tasks.approval import ask
from tests.approval_samples import sla_plan, started_run
from tests.intake_server import running_intake, send_raw
from tests.unit.test_approval_links import store  # noqa: F401  (the fixture: the store on SQLite and PostgreSQL)

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture
def intake(store):
    with running_intake(token=None) as url:
        yield url


@pytest.fixture
def tokens(store, tmp_path) -> dict[str, str]:
    """Each notified person's link token for a new ask of the SLA SOP."""
    asked = ask(started_run(sla_plan(tmp_path)))
    with transaction() as session:
        rows = session.scalars(select(ApprovalLink).where(ApprovalLink.approval_id == asked["ask_id"]))
        return {link.person: approval_links.token(link) for link in rows}


@pytest.fixture
def sent(monkeypatch) -> list[tuple[str, dict, str | None]]:
    """The answers the link page sends to runs (flow run id, run input, pause key), instead of a Prefect server."""
    answers: list[tuple[str, dict, str | None]] = []
    monkeypatch.setattr(link_answers, "send_answer",
                        lambda run, answer, pause=None: answers.append((run, answer, pause)))
    return answers


def link_row(token: str) -> ApprovalLink:
    with transaction() as session:
        return session.get_one(ApprovalLink, token.split(".")[0])


def post(intake: str, token: str, body: str, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{intake}/approve/{token}", content=body.encode(), headers=headers or FORM, timeout=10)


def test_opening_a_link_shows_the_ask_and_changes_nothing(intake, tokens):
    for _ in range(2):  # a mail scanner fetching the link answers nothing
        page = httpx.get(f"{intake}/approve/{tokens['Priya Shah']}", timeout=10)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert (page.headers["cache-control"], page.headers["referrer-policy"]) == ("no-store", "no-referrer")
    assert "<h3>Work this lead?</h3>" in page.text and "Ada &lt;b&gt;Byron&lt;/b&gt;" in page.text
    assert "<b>Byron" not in page.text and "<script" not in page.text
    assert "If unanswered by the due time" in page.text and "You answer as <strong>Priya Shah</strong>" in page.text
    assert re.search(r"<input id='in-budget' name='budget' type='number' step='any' min='0'", page.text)
    assert 'name=decision value=approve' in page.text and 'name=decision value=reject' in page.text
    assert link_row(tokens["Priya Shah"]).used_at is None


def test_answering_sends_the_links_person_and_uses_the_link_once(intake, tokens, sent):
    token = tokens["Priya Shah"]
    answered = post(intake, token, "decision=approve&budget=25000&notes=Budget+confirmed&feedback=")
    assert answered.status_code == 200, answered.text
    assert "Thank you, Priya Shah: your answer (approve) is recorded" in answered.text
    [(flow_run_id, run_input, pause)] = sent
    assert run_input == {"decision": "approve", "approver": "Priya Shah", "notes": "Budget confirmed", "budget": 25000}
    assert pause == "approve-lead-ask-0"
    used = link_row(token)
    assert used.used_at is not None and used.decision == "approve"
    again = post(intake, token, "decision=reject")
    assert again.status_code == 410 and "used already" in again.text
    assert httpx.get(f"{intake}/approve/{token}", timeout=10).status_code == 410
    other = post(intake, tokens["Alex Kim"], "decision=reject")
    assert other.status_code == 409 and "answered already" in other.text and len(sent) == 1


def test_an_answer_that_does_not_fit_the_step_names_each_field(intake, tokens, sent):
    token = tokens["Priya Shah"]
    for body, named in (("decision=approve&budget=-5", "budget: -5 is below the minimum, 0"),
                        ("decision=approve&budget=lots", "budget: 'lots' is not a number"),
                        ("decision=maybe", "decision: choose approve or reject"),
                        ("budget=5", "decision: choose approve or reject"),
                        ("decision=approve&discount=5", "discount: is not an input of this step"),
                        ("decision=approve&feedback=two%0Alines", "feedback: feedback contains a control")):
        answer = post(intake, token, body)
        assert answer.status_code == 422 and named in unescape(answer.text), (body, answer.text)
        assert "Nothing was sent" in answer.text
    assert sent == [] and link_row(token).used_at is None


def test_a_run_that_cannot_take_the_answer_leaves_the_link_working(intake, tokens, monkeypatch):
    def refuse(*args, **kwargs):
        raise ResumeFailed("flow run x is not waiting for this answer right now")

    monkeypatch.setattr(link_answers, "send_answer", refuse)
    answer = post(intake, tokens["Priya Shah"], "decision=approve")
    assert answer.status_code == 409 and "no longer waiting for this answer" in answer.text
    assert link_row(tokens["Priya Shah"]).used_at is None


@pytest.mark.parametrize("failure", [PrefectUnreachable("Prefect did not answer"), ValueError("garbled reply"),
                                     TimeoutError()])
def test_an_unreachable_or_failing_prefect_leaves_the_link_working(intake, tokens, monkeypatch, failure):
    def fail(*args, **kwargs):
        raise failure

    monkeypatch.setattr(link_answers, "send_answer", fail)
    answer = post(intake, tokens["Priya Shah"], "decision=approve")
    assert answer.status_code == 503 and "nothing was recorded and the link still works" in answer.text
    assert link_row(tokens["Priya Shah"]).used_at is None
    assert post(intake, tokens["Alex Kim"], "decision=approve").status_code == 503  # not "answered already"


def test_a_run_no_longer_waiting_gets_a_409_page_and_no_form(intake, tokens, sent):
    with transaction() as session:
        link = session.get_one(ApprovalLink, tokens["Priya Shah"].split(".")[0])
        session.get_one(SopRun, session.get_one(Approval, link.approval_id).sop_run_id).state = "cancelled"
    page = httpx.get(f"{intake}/approve/{tokens['Priya Shah']}", timeout=10)
    assert page.status_code == 409 and "<form" not in page.text and "not waiting" in page.text
    assert post(intake, tokens["Priya Shah"], "decision=approve").status_code == 409
    assert sent == [] and link_row(tokens["Priya Shah"]).used_at is None


@pytest.mark.parametrize("path", ["/approve/", "/approve/abc", "/approve/" + "a" * 5000, "/approve/%00",
                                  "/approve/a/b", "/approve/%E2%80%AE"])
def test_a_malformed_link_gets_a_400_page(intake, path):
    answer = httpx.get(f"{intake}{path}", timeout=10)
    assert answer.status_code == 400 and "not a whole approval link" in answer.text


def test_a_forged_link_gets_a_403_page_and_its_token_is_never_logged(intake, tokens, caplog):
    token = tokens["Priya Shah"]
    forged = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    with caplog.at_level(logging.DEBUG):
        assert httpx.get(f"{intake}/approve/{forged}", timeout=10).status_code == 403
        assert post(intake, forged, "decision=approve").status_code == 403
        assert post(intake, token, "decision=maybe").status_code == 422
    server = [r for r in caplog.records if r.name.startswith(("sopflow", "uvicorn", "starlette", "fastapi"))]
    logged = "\n".join(record.getMessage() for record in server)  # the test's own HTTP client logs its URLs
    assert "/approve/[secret]" in logged and token.split(".")[1] not in logged and forged.split(".")[1] not in logged


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_get_a_405_page(intake, tokens, method):
    answer = httpx.request(method, f"{intake}/approve/{tokens['Priya Shah']}", timeout=10)
    assert answer.status_code == 405 and answer.headers["allow"] == "GET, HEAD, POST"
    assert "opened (GET) and answered with its page's form (POST) only" in unescape(answer.text)


def test_a_body_that_is_not_the_pages_form_is_refused(intake, tokens, sent):
    token = tokens["Priya Shah"]
    as_json = post(intake, token, '{"decision": "approve"}', {"Content-Type": "application/json"})
    assert as_json.status_code == 415 and "application/x-www-form-urlencoded" in as_json.text
    twice = post(intake, token, "decision=approve&decision=reject")
    assert twice.status_code == 400 and "'decision' came more than once" in unescape(twice.text)
    not_utf8 = httpx.post(f"{intake}/approve/{token}", content=b"decision=\xff\xfe", headers=FORM, timeout=10)
    assert not_utf8.status_code == 400 and "could not be read" in not_utf8.text
    many = post(intake, token, "&".join(f"f{i}=1" for i in range(150)))
    assert many.status_code == 400
    huge = post(intake, token, "decision=approve&notes=" + "x" * 70_000)
    assert huge.status_code == 413 and "larger than" in huge.json()["detail"]
    raw = send_raw(intake, f"POST /approve/{token} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-"
                             "urlencoded\r\nContent-Length: -1\r\n\r\n".encode())
    assert raw.status == 400
    assert sent == [] and link_row(token).used_at is None
