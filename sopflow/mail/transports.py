"""How an outbox email leaves sopflow: nowhere (the outbox), SMTP, or a provider's HTTP API.

Secrets (the SMTP password, the API token) never appear in reprs, errors or logs.
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate, parseaddr
from typing import ClassVar, Protocol
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx

DEFAULT_SENDER = "sopflow@localhost"
OWN_HEADERS = {"from", "to", "subject", "date", "message-id"}
# Lines up to RFC 5322's hard limit, so a long `List-Unsubscribe: <https://...>` goes out literally,
# as RFC 2369 and 8058 require, not RFC 2047-encoded (which mail providers do not read as a link);
# 7-bit clean, so non-ASCII bodies are quoted-printable or base64 for any SMTP server.
SMTP_POLICY = SMTP.clone(max_line_length=998, cte_type="7bit")


@dataclass(frozen=True)
class Message:
    idempotency_key: str
    to: str
    sender: str
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """Sending failed. `permanent`: retrying cannot help. `uncertain`: it may have gone out anyway."""

    def __init__(self, message: str, *, permanent: bool, uncertain: bool = False) -> None:
        super().__init__(message)
        self.permanent, self.uncertain = permanent, uncertain


class Transport(Protocol):
    idempotent: ClassVar[bool]  # True when sending the same idempotency key twice delivers once
    sender: str

    def send(self, message: Message) -> str: ...


def _scrub(text: str, secret: str | None) -> str:
    return text.replace(secret, "***").replace(quote(secret, safe=""), "***") if secret else text


class OutboxTransport:
    """Sends nothing: the email stays in the outbox table (the default)."""

    idempotent: ClassVar[bool] = False

    def __init__(self, sender: str = DEFAULT_SENDER) -> None:
        self.sender = sender

    def send(self, message: Message) -> str:
        return "outbox"

    def __repr__(self) -> str:
        return f"OutboxTransport(sender={self.sender!r})"


def mime_message(message: Message) -> EmailMessage:
    """The email as MIME: multipart/alternative with html, a Message-ID derived from the key."""
    domain = parseaddr(message.sender)[1].rpartition("@")[2] or "sopflow.localhost"
    mime = EmailMessage(policy=SMTP_POLICY)
    mime["From"], mime["To"], mime["Subject"] = message.sender, message.to, message.subject
    mime["Date"] = formatdate(usegmt=True)
    mime["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
    for name, value in message.headers.items():
        if name.lower() not in OWN_HEADERS:
            mime[name] = value
    mime.set_content(message.text)
    if message.html is not None:
        mime.add_alternative(message.html, subtype="html")
    return mime


def _expect(answer: tuple[int, bytes], *accepted: int) -> None:
    if answer[0] not in accepted:
        raise smtplib.SMTPResponseException(*answer)


class SmtpTransport:
    """smtp://user:password@host:587?starttls=true&timeout=30&cafile=PATH (smtps:// for implicit TLS)."""

    idempotent: ClassVar[bool] = False  # a resend is a second email

    def __init__(self, url: str, sender: str = DEFAULT_SENDER, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SOPFLOW_SMTP_URL must look like smtp://user:password@host:587?starttls=true")
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        self.host, self.port = parts.hostname, parts.port or (465 if parts.scheme == "smtps" else 25)
        self.implicit_tls, self.cafile = parts.scheme == "smtps", query.get("cafile")
        self.starttls = query.get("starttls", "").lower() in ("1", "true", "yes", "on")
        self.timeout = float(query.get("timeout", timeout))
        self.username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password or "")
        self.sender = sender

    def __repr__(self) -> str:
        user = f"{self.username}:***@" if self.username else ""
        return f"SmtpTransport({'smtps' if self.implicit_tls else 'smtp'}://{user}{self.host}:{self.port}, starttls={self.starttls})"

    def _error(self, reason: str, *, permanent: bool, uncertain: bool = False) -> DeliveryError:
        text = _scrub(f"SMTP server {self.host}:{self.port}: {reason}", self._password)
        return DeliveryError(text, permanent=permanent, uncertain=uncertain)

    def _lost(self, stage: str, exc: Exception) -> DeliveryError:
        if stage == "DATA":  # the server may have taken the email before the error reached us
            reason = f"connection lost after the email was handed over ({type(exc).__name__}: {exc}); it may have been delivered"
            return self._error(reason, permanent=False, uncertain=True)
        return self._error(f"{stage} failed: {type(exc).__name__}: {exc}", permanent=False)

    def send(self, message: Message) -> str:
        try:
            mime = mime_message(message)
            payload = bytes(mime)
        except (ValueError, TypeError) as exc:
            raise DeliveryError(f"cannot build the email: {exc}", permanent=True) from None
        context = ssl.create_default_context(cafile=self.cafile) if self.implicit_tls or self.starttls else None
        smtp, stage = None, "connect"
        try:
            if self.implicit_tls:
                smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            if self.starttls:
                stage = "STARTTLS"
                smtp.starttls(context=context)
            if self.username:
                stage = "login"
                smtp.login(self.username, self._password)
            stage = "MAIL FROM"
            smtp.ehlo_or_helo_if_needed()
            _expect(smtp.mail(message.sender), 250)
            stage = "RCPT TO"
            _expect(smtp.rcpt(message.to), 250, 251)
            stage = "DATA"  # a connection lost from here on leaves it unknown whether the server took it
            _expect(smtp.data(payload), 250)
        except smtplib.SMTPResponseException as exc:  # 4xx: try again later; 5xx: refused for good
            text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
            raise self._error(f"{stage} answered {exc.smtp_code} {text}", permanent=exc.smtp_code >= 500) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise self._lost(stage, exc) from None
        except smtplib.SMTPException as exc:  # e.g. the server offers no STARTTLS or AUTH: configuration
            raise self._error(f"{stage}: {exc}", permanent=True) from None
        except OSError as exc:  # refused, timed out, TLS failure
            raise self._lost(stage, exc) from None
        finally:
            if smtp is not None:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        return str(mime["Message-ID"]).strip("<>")


class HttpTransport:
    """A provider's JSON API: POST {to, from, subject, text, html, headers} with an Idempotency-Key."""

    idempotent: ClassVar[bool] = True  # the provider delivers one email per key

    def __init__(self, url: str, token: str | None = None, sender: str = DEFAULT_SENDER, timeout: float = 30.0) -> None:
        self.url, self._token, self.sender, self.timeout = url, token, sender, timeout
        parts = urlsplit(url)
        self._shown = f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"

    def __repr__(self) -> str:
        return f"HttpTransport({self._shown}, token={'***' if self._token else None})"

    def _error(self, reason: str, *, permanent: bool) -> DeliveryError:
        text = _scrub(_scrub(f"email API {self._shown}: {reason}", self._token), urlsplit(self.url).password)
        return DeliveryError(text, permanent=permanent)

    def send(self, message: Message) -> str:
        headers = {"Idempotency-Key": message.idempotency_key}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        body = {"to": message.to, "from": message.sender, "subject": message.subject,
                "text": message.text, "html": message.html, "headers": dict(message.headers)}
        try:
            response = httpx.post(self.url, json=body, headers=headers, timeout=self.timeout)
        except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
            raise self._error(f"bad SOPFLOW_EMAIL_HTTP_URL: {exc}", permanent=True) from None
        except httpx.HTTPError as exc:  # refused, timed out, broken connection
            raise self._error(f"{type(exc).__name__}: {exc}", permanent=False) from None
        if not response.is_success:
            transient = response.status_code in (408, 409, 425, 429) or response.status_code >= 500
            raise self._error(f"answered {response.status_code}: {response.text[:300]}", permanent=not transient)
        try:
            return str(response.json().get("id") or "")
        except (ValueError, AttributeError):  # no JSON object: no provider id
            return ""


TRANSPORTS = {"outbox": OutboxTransport, "smtp": SmtpTransport, "http": HttpTransport}


def _required(name: str, example: str) -> str:
    if value := os.environ.get(name):
        return value
    raise ValueError(f"{name} is not set; set it (e.g. {example}) or set SOPFLOW_EMAIL_TRANSPORT=outbox.")


def transport_from_settings() -> Transport:
    """The transport `SOPFLOW_EMAIL_TRANSPORT` names (outbox|smtp|http), sending as `SOPFLOW_EMAIL_FROM`."""
    kind = (os.environ.get("SOPFLOW_EMAIL_TRANSPORT") or "outbox").strip().lower()
    sender = os.environ.get("SOPFLOW_EMAIL_FROM") or DEFAULT_SENDER
    if kind == "outbox":
        return OutboxTransport(sender)
    if kind == "smtp":
        return SmtpTransport(_required("SOPFLOW_SMTP_URL", "smtp://user:password@host:587?starttls=true"), sender)
    if kind == "http":
        url = _required("SOPFLOW_EMAIL_HTTP_URL", "https://api.provider.example/v1/emails")
        return HttpTransport(url, os.environ.get("SOPFLOW_EMAIL_HTTP_TOKEN") or None, sender)
    raise ValueError(f"SOPFLOW_EMAIL_TRANSPORT={kind!r} is not a transport; set it to one of {', '.join(TRANSPORTS)}.")
