"""Hypothesis throws generated bodies and headers at the running intake: every answer is a 2xx or 4xx with a
JSON body, and a lead is stored exactly when the answer says so."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from sopflow.store.db import transaction
from sopflow.store.models import Lead
from tests.intake_server import running_intake, send_raw

TOKEN = "fuzz-token"
FIELDS = ["email", "name", "company", "title", "employees", "industry", "source", "do_not_contact"]
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
EMAILS = st.emails() | st.text(max_size=40).map(lambda text: f"{text}@fuzz.example")
LEADS = st.fixed_dictionaries({"email": EMAILS}, optional={
    name: (st.text(max_size=300) | JSON_VALUES) for name in FIELDS[1:]
})
BODIES = st.one_of(
    LEADS.map(lambda lead: json.dumps(lead).encode()),
    JSON_VALUES.map(lambda value: json.dumps(value).encode()),
    st.binary(max_size=2000),
    LEADS.map(lambda lead: json.dumps(lead).encode()).flatmap(
        lambda body: st.integers(0, max(len(body) - 1, 0)).map(lambda cut: body[:cut] + b"\xff" + body[cut:])),
)
HEADER_NAMES = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)
HEADER_VALUES = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=60)
LENGTHS = st.sampled_from(["exact", "absent", "-1", "abc", "0", "shorter", "99999999999999999999"])


@pytest.fixture(scope="module")
def intake(tmp_path_factory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as patch:
        home = tmp_path_factory.mktemp("fuzz-intake")
        patch.setenv("SOPFLOW_DATABASE_URL", f"sqlite:///{home / 'store.db'}")
        patch.setenv("SOPFLOW_HOME", str(home))
        with running_intake(token=TOKEN, read_timeout=1.0) as url:
            yield url


def leads_stored() -> int:
    with transaction() as session:
        return session.scalar(select(func.count()).select_from(Lead))


def request(body: bytes, length: str, extra: list[tuple[str, str]], path: str = "/leads") -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: intake", f"Authorization: Bearer {TOKEN}"]
    lines += [f"{name}: {value}" for name, value in extra if name.lower() not in ("content-length", "transfer-encoding",
                                                                                  "authorization", "host")]
    declared = {"exact": str(len(body)), "shorter": str(max(len(body) // 2, 0))}.get(length, length)
    if length != "absent":
        lines.append(f"Content-Length: {declared}")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=BODIES, length=LENGTHS, extra=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4))
def test_any_body_and_headers_get_a_json_2xx_or_4xx_and_store_only_what_was_answered(intake, body, length, extra):
    before = leads_stored()
    answer = send_raw(intake, request(body, length, extra), wait=5)
    assert answer.status is not None, f"no answer: {answer.body[:200]!r}"
    assert 200 <= answer.status < 500, answer
    event(f"answered {answer.status}")  # `pytest --hypothesis-show-statistics` shows how often each came
    detail = answer.json()
    if answer.status == 201:
        assert leads_stored() == before + 1 and set(detail) == {"id", "created", "runs"}
    else:
        assert leads_stored() == before, answer


@settings(max_examples=80, deadline=None)
@given(path=st.text(st.characters(min_codepoint=33, max_codepoint=126), max_size=60), body=BODIES)
def test_any_path_gets_a_json_answer(intake, path, body):
    answer = send_raw(intake, request(body, "exact", [], path=f"/{path}"), wait=5)
    assert answer.status is not None and 200 <= answer.status < 500, answer
    if answer.headers.get("content-type", "").startswith("text/html"):  # the unsubscribe page
        assert b"<p>" in answer.body
    else:
        answer.json()
