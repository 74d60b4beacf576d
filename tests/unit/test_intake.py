"""The HTTP intake against hostile input and load: every request answered in JSON, nothing half-stored.

Each test runs the real server (FastAPI on uvicorn with httptools and uvloop, sopflow's protocol
and guard) in a thread, storing in a real SQLite or PostgreSQL store. Requests are written on raw
sockets where an HTTP client would refuse to send them (lying headers, half bodies, stalls).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from sopflow.consent import unsubscribe_token
from sopflow.store.db import transaction
from sopflow.store.models import Lead, SopRun
from tests.intake_server import running_intake, send_raw
from tests.support import wait_for

TOKEN = "s3cret-intake-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ_TIMEOUT = 1.0
EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@pytest.fixture
def store(store_url, monkeypatch, tmp_path) -> str:
    """The intake's store (SQLite, then PostgreSQL) and a home for its signing key."""
    monkeypatch.setenv("SOPFLOW_DATABASE_URL", store_url)
    monkeypatch.setenv("SOPFLOW_HOME", str(tmp_path / "home"))
    return store_url


@pytest.fixture
def intake(store):
    with running_intake(token=TOKEN, read_timeout=READ_TIMEOUT) as url:
        yield url


def counts(url: str) -> tuple[int, int]:
    with transaction(url) as session:
        return (session.scalar(select(func.count()).select_from(Lead)),
                session.scalar(select(func.count()).select_from(SopRun)))


def post(intake: str, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.post(f"{intake}/leads", content=body, headers={**AUTH, **(headers or {})}, timeout=10)


def raw_post(body: bytes, *headers: str) -> bytes:
    """A POST /leads request as bytes, with exactly the given header lines (after Host and Authorization)."""
    lines = ["POST /leads HTTP/1.1", "Host: intake", f"Authorization: Bearer {TOKEN}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def test_a_lead_is_stored_once_with_its_run_claimed(intake, store):
    lead = {"email": "Jane@Acme.example", "name": "Jane Doe", "company": "Acme", "employees": 500}
    first, again = post(intake, json.dumps(lead).encode()), post(intake, json.dumps(lead).encode())
    assert (first.status_code, again.status_code) == (201, 200), first.text
    assert first.json()["id"] == again.json()["id"] and (first.json()["created"], again.json()["created"]) == (True, False)
    [run] = first.json()["runs"]
    assert run["sop"] == "lead-qualification" and run["flow_run_id"] is None  # started later, by the dispatcher
    assert again.json()["runs"] == [run] and counts(store) == (1, 1)
    assert EMAIL.search(first.text) is None  # the answer holds ids, not the lead's data


@pytest.mark.parametrize("authorization", [None, TOKEN, f"Basic {TOKEN}", "Bearer wrong", "Bearer s3cret-intake-tokeñ",
                                           f"Bearer {TOKEN} extra"])
def test_the_bearer_scheme_and_token_are_required(intake, store, authorization):
    headers = {"Authorization": authorization.encode()} if authorization else {}  # bytes: non-ASCII goes as is
    response = httpx.post(f"{intake}/leads", json={"email": "a@acme.example"}, headers=headers, timeout=10)
    assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
    assert "bearer token" in response.json()["detail"] and counts(store) == (0, 0)


def test_the_lead_routes_answer_503_without_a_token(store):
    with running_intake(token=None) as url:
        response = httpx.post(f"{url}/leads", json={"email": "a@acme.example"}, headers=AUTH, timeout=10)
    assert response.status_code == 503 and "SOPFLOW_INTAKE_TOKEN" in response.json()["detail"]


@pytest.mark.parametrize(("body", "field", "reason"), [
    (b'{"email": "x@acme.example", "employees": 2147483648}', "employees", "less than or equal to 2147483647"),
    (b'{"email": "x@acme.example", "employees": 1e400}', "employees", "finite number"),
    (b'{"email": "x@acme.example", "employees": 1' + b"0" * 5000 + b"}", None, "not JSON"),
    (b'{"email": "x@acme.example", "name": "Jane\\u0000Doe"}', "name", "U+0000"),
    (b'{"email": "x\\u0000@acme.example"}', "email", "U+0000"),
    (b'{"email": "x@acme.example", "company": "Acme\\u202egnp.exe"}', "company", "U+202E"),
    (b'{"email": "x@acme.example", "title": "VP\\nSales"}', "title", "U+000A"),
    (b'{"email": "x@acme.example", "industry": "' + b"i" * 101 + b'"}', "industry", "at most 100"),
    (b'{"email": "x@acme.example", "compnay": "Typo"}', "compnay", "Extra inputs"),
    (b'{"name": "No Email"}', "email", "required"),
    (b'{"email": "not-an-email"}', "email", "not an email address"),
    (b"[" * 5000 + b"]" * 5000, None, "recursion limit"),
    (b'{"email": "x@acme.example", "name": "\xff\xfe"}', None, "not JSON"),
    (b"{not json", None, "not JSON"),
    (b"", None, "object"),
    (b'["x@acme.example"]', None, "object"),
])
def test_a_bad_body_gets_422_naming_the_field_and_stores_nothing(intake, store, body, field, reason):
    response = post(intake, body)
    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert all(set(error) == {"loc", "msg", "type"} for error in errors)  # never the input echoed back
    if field:
        assert [field] in [error["loc"] for error in errors]
    assert reason in " ".join(error["msg"] for error in errors)
    assert counts(store) == (0, 0)


@pytest.mark.parametrize("headers", [
    ("Content-Length: -1",),
    ("Content-Length: twenty",),
    ("Content-Length: 10", "Content-Length: 20"),
    ("Content-Length: 20", "Transfer-Encoding: chunked"),
])
def test_lying_content_length_gets_a_json_4xx_and_stores_nothing(intake, store, headers):
    answer = send_raw(intake, raw_post(b"", *headers), json.dumps({"email": "liar@acme.example"}).encode() + b"x" * 2**20)
    assert answer.status in (400, 413, 422), answer
    assert "detail" in answer.json() and counts(store) == (0, 0)


def test_a_body_larger_than_the_limit_is_refused_whatever_the_headers_say(intake, store):
    big = b'{"email": "big@acme.example", "name": "' + b"a" * 20 * 2**20 + b'"}'
    declared = send_raw(intake, raw_post(big[:1000], f"Content-Length: {len(big)}"))
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 8192]), big[i:i + 8192]) for i in range(0, len(big), 8192))
    chunked = send_raw(intake, raw_post(b"", "Transfer-Encoding: chunked"), chunks + b"0\r\n\r\n")
    for answer in (declared, chunked):
        assert answer.status == 413 and "larger than 65536 bytes" in answer.json()["detail"]
        assert answer.headers["connection"] == "close"
    assert counts(store) == (0, 0)


def test_a_body_that_stops_half_way_is_never_stored(intake, store):
    body = json.dumps({"email": "half@acme.example", "name": "Half Way"}).encode()
    gone = send_raw(intake, raw_post(body[: len(body) // 2], f"Content-Length: {len(body)}"), shut_write=True)
    stalled = send_raw(intake, raw_post(body[: len(body) // 2], f"Content-Length: {len(body)}"))
    assert stalled.status == 408 and "did not arrive within 1 s" in stalled.json()["detail"]
    assert stalled.seconds < READ_TIMEOUT + 2
    assert gone.status in (None, 408)  # the client left; nothing to answer, or the deadline's 408
    assert counts(store) == (0, 0)


def test_a_dripping_body_is_cut_off_at_the_deadline(intake, store):
    body = json.dumps({"email": "drip@acme.example"}).encode()
    drips = [raw_post(b"", f"Content-Length: {len(body)}")] + [bytes([byte]) for byte in body]
    answer = send_raw(intake, *drips, pause=0.1)
    assert answer.status == 408 and answer.seconds < READ_TIMEOUT + 2
    assert counts(store) == (0, 0)


@pytest.mark.parametrize("sent", [b"", b"POST /leads HTTP/1.1\r\nHost: intake\r\nAuthoriz"])
def test_headers_that_never_finish_get_408_and_the_connection_is_closed(intake, store, sent):
    answer = send_raw(intake, sent)
    assert answer.status == 408 and "headers did not arrive within 1 s" in answer.json()["detail"]
    assert answer.headers["connection"] == "close" and answer.seconds < READ_TIMEOUT + 2


@pytest.mark.parametrize("request_line", [
    b"POST /leads\xff HTTP/1.1", b"GARBAGE", b"POST /leads HTTP/9.9", b"POST /%ZZ HTTP/1.1",
])
def test_malformed_requests_get_a_json_400(intake, store, request_line):
    answer = send_raw(intake, request_line + b"\r\nHost: intake\r\nContent-Length: 2\r\n\r\n{}")
    assert answer.status in (400, 404) and "detail" in answer.json()
    assert counts(store) == (0, 0)


def test_oversized_headers_get_a_json_431(intake, store):
    body = json.dumps({"email": "padded@acme.example"}).encode()
    answer = send_raw(intake, raw_post(body, "X-Padding: " + "p" * 200_000, f"Content-Length: {len(body)}"))
    assert answer.status == 431 and "exceed 32768 bytes" in answer.json()["detail"]
    assert counts(store) == (0, 0)


@pytest.mark.parametrize("query", [
    "lead={lead}&token=%C3%BC%C3%BC", "lead={lead}&token=%FF%FE", "lead=../../etc&token=abc", "lead={lead}",
    "token={token}", "lead={lead}&token={token}x", "lead=%00&token=%00",
])
def test_a_forged_or_broken_unsubscribe_link_gets_a_400_page(intake, store, query):
    lead = str(uuid.uuid4())
    url = f"{intake}/unsubscribe?{query.format(lead=lead, token=unsubscribe_token(lead))}"
    for response in (httpx.get(url, timeout=10), httpx.post(url, timeout=10)):
        assert response.status_code == 400 and "not valid" in response.text
        assert response.headers["content-type"].startswith("text/html")


def test_opening_an_unsubscribe_link_asks_first_and_only_the_button_or_one_click_unsubscribes(intake, store):
    lead_id = post(intake, b'{"email": "scanned@acme.example"}').json()["id"]
    link = f"{intake}/unsubscribe?lead={lead_id}&token={unsubscribe_token(lead_id)}"

    def unsubscribed() -> bool:
        with transaction(store) as session:
            return session.get(Lead, lead_id).unsubscribed_at is not None

    for _ in range(3):  # what a mail provider's link scanner does
        page = httpx.get(link, timeout=10)
        assert page.status_code == 200 and "Press the button" in page.text and not unsubscribed()
    action = re.search(r'<form method="post" action="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert action == link.removeprefix(intake)
    pressed = httpx.post(f"{intake}{action}", timeout=10)
    assert pressed.status_code == 200 and "You are unsubscribed" in pressed.text and unsubscribed()
    again = httpx.get(link, timeout=10)
    assert "already unsubscribed" in again.text and "<form" not in again.text

    other = post(intake, b'{"email": "one-click@acme.example"}').json()["id"]
    one_click = httpx.post(f"{intake}/unsubscribe", params={"lead": other, "token": unsubscribe_token(other)},
                           content=b"List-Unsubscribe=One-Click", timeout=10,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert one_click.status_code == 200 and "You are unsubscribed" in one_click.text


def test_engagement_for_a_malformed_lead_id_is_404_without_echoing_it(intake, store):
    response = httpx.post(f"{intake}/leads/{'%00' * 50}x/engagement", json={"event": "opened"}, headers=AUTH, timeout=10)
    assert response.status_code == 404 and "POST the lead to /leads first" in response.json()["detail"]


def test_unknown_routes_and_methods_answer_json(intake, store):
    assert httpx.get(f"{intake}/nope", timeout=10).json() == {"detail": "Not Found"}
    wrong = httpx.delete(f"{intake}/leads", timeout=10)
    assert wrong.status_code == 405 and wrong.json() == {"detail": "Method Not Allowed"}


def test_the_api_is_documented_and_the_docs_page_needs_nothing_from_the_internet(intake, store):
    page = httpx.get(f"{intake}/docs", timeout=10)
    assert page.status_code == 200 and "/openapi.json" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and all(asset.startswith("/docs/assets/") for asset in assets), assets
    assert all(httpx.get(f"{intake}{asset}", timeout=10).status_code == 200 for asset in assets)
    spec = httpx.get(f"{intake}/openapi.json", timeout=10).json()
    ref = spec["paths"]["/leads"]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"email", "employees", "do_not_contact"} <= set(body["properties"]) and body["required"] == ["email"]
    assert spec["paths"]["/leads"]["post"]["security"] == [{"intakeToken": []}]
    assert spec["components"]["securitySchemes"]["intakeToken"]["scheme"] == "bearer"
    assert {"/leads/{lead_id}/engagement", "/unsubscribe", "/health"} <= set(spec["paths"])


async def _burst(intake: str, bodies: list[bytes]) -> list[tuple[int | None, bytes]]:
    host, port = intake.removeprefix("http://").split(":")

    async def one(body: bytes) -> tuple[int | None, bytes]:
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(raw_post(body, f"Content-Length: {len(body)}", "Connection: close"))
        answer = await reader.read()
        writer.close()
        head, _, content = answer.partition(b"\r\n\r\n")
        return (int(head.split()[1]) if head.startswith(b"HTTP/1.1") else None), content

    return await asyncio.gather(*(one(body) for body in bodies))


def test_500_simultaneous_posts_are_all_answered_and_each_lead_stored_once(store):
    emails = [f"burst-{n}@acme.example" for n in range(450)] + [f"burst-{n}@acme.example" for n in range(50)]
    bodies = [json.dumps({"email": email, "name": f"Lead {n}"}).encode() for n, email in enumerate(emails)]
    # the default read deadline: the one-second deadline of the other tests cuts requests off on a busy machine
    with running_intake(token=TOKEN, read_timeout=10.0) as intake:
        answers = asyncio.run(_burst(intake, bodies))
    statuses = [status for status, _ in answers]
    assert statuses.count(201) == 450 and statuses.count(200) == 50, sorted(set(statuses), key=str)
    ids = {json.loads(content)["id"] for _, content in answers}
    assert len(ids) == 450 and counts(store) == (450, 450)


def test_the_log_holds_no_email_address_or_token(intake, store, caplog):
    caplog.set_level(logging.DEBUG)
    post(intake, b'{"email": "logged@acme.example", "name": "Jane\\u0000"}')
    post(intake, b'{"email": "logged@acme.example", "employees": 99999999999}')
    post(intake, b'{"email": "logged@acme.example"}')
    send_raw(intake, raw_post(b'{"email": "logged@acme.example"}', "Content-Length: -1"))
    httpx.get(f"{intake}/unsubscribe?lead=x&token=logged@acme.example", timeout=10)

    def logged() -> str:  # a refusal is logged once its answer has gone out: a moment after the client has it
        return "\n".join(f"{r.getMessage()} {r.exc_text or ''}" for r in caplog.records
                         if r.name.startswith(("sopflow", "uvicorn")))  # not the test client's own debug lines
    server = wait_for(lambda: "GET /unsubscribe 400" in logged() and logged(), "the last refusal to be logged")
    assert "POST /leads 422" in server and "Invalid HTTP request" in server and "GET /unsubscribe 400" in server
    assert EMAIL.search(server) is None and TOKEN not in server and "token=" not in server
    assert "Traceback" not in server
