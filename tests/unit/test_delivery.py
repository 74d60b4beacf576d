"""Email delivery against real servers on 127.0.0.1: aiosmtpd SMTP and a provider-like HTTP API."""

from __future__ import annotations

import logging
import ssl
import threading

import pytest

from sopflow.leads import LeadIn
from sopflow.mail import (
    DeliveryError, HttpTransport, Message, OutboxTransport, SmtpTransport, deliver, transport_from_settings,
)
from sopflow.settings import PROJECT_ROOT
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import Lead, OutboxEmail
from sopflow.store.outbox import queue_email
from sopflow.store.runs import ensure_run
from sopflow.templates import render_email
from tests.mail_servers import EmailApi, SmtpRecorder, free_port, self_signed_cert, start_smtp

UNSUBSCRIBE = "<mailto:unsubscribe@sales.example?subject=unsubscribe>, <https://sales.example/u/1>"
RENDERED = render_email(PROJECT_ROOT / "sop_definitions" / "templates", "qualified_follow_up",
                        {"lead": {"first_name": "Jane", "company": "Acme"}})


class CrashAfterSend(BaseException):
    """The worker dies after the transport sent, before delivery recorded it."""


class Crashing:
    """Sends through `inner`, then crashes, leaving the row in `sending` as a killed worker would."""

    def __init__(self, inner) -> None:
        self.inner, self.idempotent, self.sender = inner, inner.idempotent, inner.sender

    def send(self, message: Message) -> str:
        self.inner.send(message)
        raise CrashAfterSend


@pytest.fixture
def url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'store.db'}"


@pytest.fixture
def queue(url):
    """Queue one outbox email (its own lead and run) and return its id."""

    def make(to: str = "jane@acme.example", step_id: str = "follow_up_email") -> int:
        with transaction(url) as session:
            lead, _ = add_lead(session, LeadIn(email=to, name="Jane Doe", company="Acme"))
            run = ensure_run(session, "lead-qualification", lead.id)
            session.flush()
            email = queue_email(session, OutboxEmail(
                sop_run_id=run.id, step_id=step_id, lead_id=lead.id, to_address=to, subject=RENDERED.subject,
                body_text=RENDERED.text, body_html=RENDERED.html, headers={"List-Unsubscribe": UNSUBSCRIBE},
            ))
            return email.id

    return make


def row(url: str, outbox_id: int) -> OutboxEmail:
    with transaction(url) as session:
        return session.get_one(OutboxEmail, outbox_id)


@pytest.fixture
def smtp():
    handler = SmtpRecorder()
    controller = start_smtp(handler)
    handler.url = f"smtp://127.0.0.1:{controller.port}?timeout=5"
    yield handler
    handler.release.set()
    controller.stop()


@pytest.fixture
def api():
    server = EmailApi()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_smtp_delivers_the_rendered_email_once(url, queue, smtp):
    outbox_id = queue()
    transport = SmtpTransport(smtp.url, sender="Sales <sales@acme-seller.example>")
    assert deliver(outbox_id, transport, url) == "sent"
    assert deliver(outbox_id, transport, url) == "sent"  # already sent: nothing more goes out

    assert len(smtp.messages) == 1
    email, stored = smtp.messages[0], row(url, outbox_id)
    assert smtp.envelopes[0] == ("sales@acme-seller.example", ["jane@acme.example"])
    assert "Acme" in RENDERED.subject and email["Subject"] == RENDERED.subject
    assert email["Message-ID"] == f"<sopflow-{stored.sop_run_id}-follow_up_email@acme-seller.example>"
    assert stored.idempotency_key == f"sopflow-{stored.sop_run_id}-follow_up_email"
    assert email["List-Unsubscribe"] == UNSUBSCRIBE
    assert email.get_content_type() == "multipart/alternative"
    assert email.get_body(("plain",)).get_content().strip() == RENDERED.text
    assert email.get_body(("html",)).get_content().strip() == RENDERED.html
    assert (stored.status, stored.attempts, stored.provider_id) == ("sent", 1, email["Message-ID"].strip("<>"))
    assert stored.sent_at is not None and stored.last_error is None


def test_smtp_starttls_and_login(url, queue, tmp_path):
    cert, key = self_signed_cert(tmp_path)
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    handler = SmtpRecorder()
    controller = start_smtp(handler, tls_context=server_tls, require_starttls=True,
                            authenticator=handler.authenticator("ana", "p@ss w0rd"))
    try:
        base = f"smtp://ana:{{}}@127.0.0.1:{controller.port}?timeout=5&cafile={cert}"
        plain = SmtpTransport(f"smtp://ana:p%40ss%20w0rd@127.0.0.1:{controller.port}?timeout=5")
        with pytest.raises(DeliveryError) as refused:  # the server insists on STARTTLS first
            plain.send(Message("k0", "jane@acme.example", "s@acme.example", "hi", "hi"))
        assert refused.value.permanent and not handler.logins

        outbox_id = queue()
        good = SmtpTransport(base.format("p%40ss%20w0rd") + "&starttls=true")
        assert deliver(outbox_id, good, url) == "sent"
        assert handler.logins == ["ana"] and len(handler.messages) == 1

        wrong = SmtpTransport(base.format("hunter2-secret") + "&starttls=true")
        assert deliver(queue("sam@acme.example"), wrong, url) == "failed"  # 535: refused for good
        assert len(handler.messages) == 1
    finally:
        controller.stop()


def test_smtp_rows_left_sending_become_unconfirmed_and_are_not_resent(url, queue, smtp):
    outbox_id = queue()
    with pytest.raises(CrashAfterSend):
        deliver(outbox_id, Crashing(SmtpTransport(smtp.url)), url)
    assert row(url, outbox_id).status == "sending" and len(smtp.messages) == 1

    assert deliver(outbox_id, SmtpTransport(smtp.url), url) == "unconfirmed"
    assert deliver(outbox_id, SmtpTransport(smtp.url), url) == "unconfirmed"
    stored = row(url, outbox_id)
    assert len(smtp.messages) == 1 and stored.attempts == 1
    assert "uncertain" in stored.last_error and "check" in stored.last_error


def test_smtp_timeout_after_data_is_unconfirmed_not_retried(url, queue, smtp):
    smtp.hold = True  # the server takes the email but its reply never comes in time
    outbox_id = queue()
    transport = SmtpTransport(smtp.url.replace("timeout=5", "timeout=0.5"))
    assert deliver(outbox_id, transport, url) == "unconfirmed"
    smtp.release.set()
    assert deliver(outbox_id, transport, url) == "unconfirmed"
    assert len(smtp.messages) == 1 and "may have been delivered" in row(url, outbox_id).last_error


def test_smtp_4xx_is_transient_and_5xx_permanent(url, queue, smtp):
    later = queue("later@acme.example")
    with pytest.raises(DeliveryError) as transient:
        deliver(later, SmtpTransport(smtp.url), url)
    # the server's answer (which may quote the recipient) stays in the row, out of the raised error
    assert not transient.value.permanent and "last_error" in str(transient.value)
    assert "later@acme.example" not in str(transient.value) and "451" not in str(transient.value)
    stored = row(url, later)
    assert (stored.status, stored.attempts) == ("queued", 1) and "451" in stored.last_error

    reject = queue("reject@acme.example", step_id="other_email")
    assert deliver(reject, SmtpTransport(smtp.url), url) == "failed"
    assert "550" in row(url, reject).last_error and smtp.messages == []


def test_http_sends_json_with_the_idempotency_key_and_token(url, queue, api):
    outbox_id = queue()
    transport = HttpTransport(api.url, token="tok-abc", sender="sales@acme-seller.example")
    assert deliver(outbox_id, transport, url) == "sent"
    assert deliver(outbox_id, transport, url) == "sent"

    stored = row(url, outbox_id)
    [request] = api.requests
    assert request["headers"]["Idempotency-Key"] == f"sopflow-{stored.sop_run_id}-follow_up_email"
    assert request["headers"]["Authorization"] == "Bearer tok-abc"
    assert request["body"] == {
        "to": "jane@acme.example", "from": "sales@acme-seller.example", "subject": RENDERED.subject,
        "text": RENDERED.text, "html": RENDERED.html, "headers": {"List-Unsubscribe": UNSUBSCRIBE},
    }
    assert (stored.status, stored.provider_id, stored.attempts) == ("sent", "msg-1", 1)


def test_http_503_is_retried_under_the_same_key_until_accepted(url, queue, api):
    outbox_id = queue()
    api.script = [503]
    with pytest.raises(DeliveryError) as transient:
        deliver(outbox_id, HttpTransport(api.url), url)
    assert not transient.value.permanent
    stored = row(url, outbox_id)
    assert (stored.status, stored.attempts) == ("queued", 1) and "503" in stored.last_error

    assert deliver(outbox_id, HttpTransport(api.url), url) == "sent"
    stored = row(url, outbox_id)
    assert (stored.status, stored.attempts, stored.provider_id) == ("sent", 2, "msg-1")
    assert [r["headers"]["Idempotency-Key"] for r in api.requests] == [stored.idempotency_key] * 2
    assert list(api.accepted) == [stored.idempotency_key]


def test_http_400_fails_for_good(url, queue, api):
    outbox_id = queue()
    api.script = [400]
    assert deliver(outbox_id, HttpTransport(api.url), url) == "failed"
    assert deliver(outbox_id, HttpTransport(api.url), url) == "failed"
    stored = row(url, outbox_id)
    assert len(api.requests) == 1 and "400" in stored.last_error and stored.attempts == 1 and not api.accepted


def test_http_rows_left_sending_are_resent_under_the_same_key(url, queue, api):
    outbox_id = queue()
    with pytest.raises(CrashAfterSend):
        deliver(outbox_id, Crashing(HttpTransport(api.url)), url)
    assert row(url, outbox_id).status == "sending"

    assert deliver(outbox_id, HttpTransport(api.url), url) == "sent"
    stored = row(url, outbox_id)
    assert [r["headers"]["Idempotency-Key"] for r in api.requests] == [stored.idempotency_key] * 2
    assert len(api.accepted) == 1 and (stored.attempts, stored.provider_id) == (2, "msg-1")


@pytest.mark.parametrize("make", [
    lambda port: SmtpTransport(f"smtp://127.0.0.1:{port}?timeout=2"),
    lambda port: HttpTransport(f"http://127.0.0.1:{port}/v1/emails", timeout=2),
], ids=["smtp", "http"])
def test_connection_refused_is_transient(url, queue, make):
    outbox_id = queue()
    with pytest.raises(DeliveryError) as refused:
        deliver(outbox_id, make(free_port()), url)
    assert refused.value.permanent is False
    stored = row(url, outbox_id)
    assert (stored.status, stored.attempts) == ("queued", 1) and stored.last_error


def test_opted_out_leads_are_not_emailed(url, queue, smtp):
    outbox_id = queue()
    with transaction(url) as session:
        lead = session.get_one(OutboxEmail, outbox_id).lead_id
        if not hasattr(Lead, "do_not_contact"):  # the opt-out columns are someone else's change
            pytest.skip("the store has no opt-out column")
        session.get_one(Lead, lead).do_not_contact = True
    assert deliver(outbox_id, SmtpTransport(smtp.url), url) == "failed"
    assert smtp.messages == [] and "opted out" in row(url, outbox_id).last_error


def test_the_outbox_transport_sends_nothing(url, queue):
    outbox_id = queue()
    assert deliver(outbox_id, OutboxTransport(), url) == "sent"
    assert row(url, outbox_id).provider_id == "outbox"


def test_transport_from_settings(monkeypatch):
    for name in ("SOPFLOW_EMAIL_TRANSPORT", "SOPFLOW_EMAIL_FROM", "SOPFLOW_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    assert isinstance(transport_from_settings(), OutboxTransport)
    assert transport_from_settings().sender == "sopflow@localhost"

    monkeypatch.setenv("SOPFLOW_EMAIL_TRANSPORT", "carrier-pigeon")
    with pytest.raises(ValueError, match="SOPFLOW_EMAIL_TRANSPORT") as unknown:
        transport_from_settings()
    assert all(kind in str(unknown.value) for kind in ("outbox", "smtp", "http"))

    monkeypatch.setenv("SOPFLOW_EMAIL_TRANSPORT", "smtp")
    with pytest.raises(ValueError, match="SOPFLOW_SMTP_URL"):
        transport_from_settings()
    monkeypatch.setenv("SOPFLOW_SMTP_URL", "smtp://ana:pw@mail.example:587?starttls=true")
    monkeypatch.setenv("SOPFLOW_EMAIL_FROM", "sales@acme.example")
    smtp = transport_from_settings()
    assert (smtp.host, smtp.port, smtp.starttls, smtp.username, smtp.sender) == (
        "mail.example", 587, True, "ana", "sales@acme.example")

    monkeypatch.setenv("SOPFLOW_EMAIL_TRANSPORT", "HTTP")
    monkeypatch.setenv("SOPFLOW_EMAIL_HTTP_URL", "https://api.mail.example/v1/emails")
    monkeypatch.setenv("SOPFLOW_EMAIL_HTTP_TOKEN", "tok")
    http = transport_from_settings()
    assert isinstance(http, HttpTransport) and http.idempotent and not smtp.idempotent


def test_secrets_stay_out_of_reprs_errors_and_logs(url, queue, api, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    password, token = "hunter2-Sekr3t", "tok-Sekr3t-987"
    port = free_port()
    smtp = SmtpTransport(f"smtp://ana:{password}@127.0.0.1:{port}?timeout=2")
    http = HttpTransport(api.url, token=token)
    assert password not in repr(smtp) + str(smtp) and "ana" in repr(smtp)
    assert token not in repr(http) + str(http)

    with pytest.raises(DeliveryError) as refused:
        deliver(queue(), smtp, url)
    api.script = [401]  # the API echoes the Authorization header back in its error
    assert deliver(queue("sam@acme.example"), http, url) == "failed"
    assert token in api.requests[0]["headers"]["Authorization"]  # it really was sent

    with transaction(url) as session:
        errors = " ".join(e.last_error for e in session.query(OutboxEmail))
    shown = f"{refused.value} {refused.value!r} {errors} {caplog.text}"
    assert "401" in errors and "***" in errors
    assert password not in shown and token not in shown


def test_an_email_without_html_is_plain_text(smtp):
    provider_id = SmtpTransport(smtp.url).send(Message("k1", "a@acme.example", "s@acme.example", "hello", "body"))
    [email] = smtp.messages
    assert email.get_content_type() == "text/plain" and email.get_content().strip() == "body"
    assert provider_id == "k1@acme.example" and email["Message-ID"] == "<k1@acme.example>"


@pytest.mark.parametrize("kind", ["smtp", "http"])
def test_concurrent_deliveries_send_once(url, queue, smtp, api, kind):
    outbox_id = queue()
    make = (lambda: SmtpTransport(smtp.url)) if kind == "smtp" else (lambda: HttpTransport(api.url))
    barrier, results = threading.Barrier(4), []

    def work() -> None:
        barrier.wait()
        results.append(deliver(outbox_id, make(), url))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    delivered = len(smtp.messages) if kind == "smtp" else len(api.accepted)
    assert delivered == 1 and len(results) == 4 and row(url, outbox_id).status == "sent"


LONG_UNSUBSCRIBE = ("<https://sales.example/unsubscribe?lead=0b8a8c1e-6f5e-4a55-9b0c-0e7b0d2f0c11"
                    "&token=0123456789abcdef0123456789abcdef>")
SPOOFED_SUBJECT = "Your quote, Jane\u202e fdp.exe\u200b\r\nBcc: everyone@example.com"


def queue_spoofed(url: str) -> int:
    """An email whose subject came from lead data carrying a bidi override, a zero-width space and CRLF."""
    with transaction(url) as session:
        lead, _ = add_lead(session, LeadIn(email="jane@acme.example"))
        run = ensure_run(session, "lead-qualification", lead.id)
        session.flush()
        return queue_email(session, OutboxEmail(
            sop_run_id=run.id, step_id="follow_up_email", lead_id=lead.id, to_address=lead.email,
            subject=SPOOFED_SUBJECT, body_text="Hello", body_html=None,
            headers={"List-Unsubscribe": LONG_UNSUBSCRIBE, "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"},
        )).id


def test_smtp_sends_list_unsubscribe_literally_and_drops_invisible_characters(url, smtp):
    assert deliver(queue_spoofed(url), SmtpTransport(smtp.url), url) == "sent"
    raw = smtp.raw[0].decode("ascii")  # 7-bit clean: it decodes as ASCII
    assert f"\r\nList-Unsubscribe: {LONG_UNSUBSCRIBE}\r\n" in raw  # one literal line, no =?utf-8?q?...?=
    assert "\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n" in raw
    assert "\r\nSubject: Your quote, Jane fdp.exe Bcc: everyone@example.com\r\n" in raw
    assert "=?" not in raw and "\r\nBcc:" not in raw
    assert smtp.envelopes[0][1] == ["jane@acme.example"]


def test_http_sends_headers_and_subject_without_invisible_characters(url, api):
    assert deliver(queue_spoofed(url), HttpTransport(api.url), url) == "sent"
    body = api.requests[0]["body"]
    assert body["subject"] == "Your quote, Jane fdp.exe Bcc: everyone@example.com"
    assert body["headers"]["List-Unsubscribe"] == LONG_UNSUBSCRIBE
