"""Real mail servers on 127.0.0.1 for the delivery tests: aiosmtpd SMTP and a provider-like HTTP API."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import socket
import threading
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult


def free_port() -> int:
    """A port nothing listens on (bound once by the OS, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class SmtpRecorder:
    """aiosmtpd handler keeping every accepted email. Recipients starting `reject` get 550, `later` 451.
    While `hold` is set, DATA is recorded but its reply withheld until `release` is set."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.raw: list[bytes] = []  # each email as it arrived, for what parsing would hide (encodings)
        self.envelopes: list[tuple[str, list[str]]] = []
        self.logins: list[str] = []
        self.hold = False
        self.release = threading.Event()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:
        if address.startswith("reject"):
            return "550 5.1.1 mailbox unavailable"
        if address.startswith("later"):
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:
        self.raw.append(envelope.content)
        self.messages.append(message_from_bytes(envelope.content.replace(b"\r\n", b"\n"), policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if self.hold:  # the email is in, but the client hears nothing until released
            await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30)
        return "250 2.0.0 queued"

    def authenticator(self, user: str, password: str):
        def check(server, session, envelope, mechanism, auth_data) -> AuthResult:
            ok = auth_data.login.decode() == user and auth_data.password.decode() == password
            if ok:
                self.logins.append(user)
            return AuthResult(success=ok, handled=False)

        return check


def self_signed_cert(directory: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA: (certificate, key) PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


class EmailApi(ThreadingHTTPServer):
    """A provider-like JSON API: one email per Idempotency-Key (repeats get the first answer back).
    `script` holds the status codes of the next answers (then 200); 401 echoes the Authorization header,
    as a careless provider might."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ApiHandler)
        self.requests: list[dict[str, Any]] = []  # every request: its headers and JSON body
        self.accepted: dict[str, dict[str, Any]] = {}  # Idempotency-Key -> the email accepted under it
        self.script: list[int] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1/emails"


class _ApiHandler(BaseHTTPRequestHandler):
    server: EmailApi

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        key = self.headers.get("Idempotency-Key")
        with self.server.lock:
            self.server.requests.append({"headers": dict(self.headers), "body": body})
            status = self.server.script.pop(0) if self.server.script else 200
            if status == 200 and key:
                email = self.server.accepted.setdefault(key, {"id": f"msg-{len(self.server.accepted) + 1}", **body})
        if status == 200:
            answer = {"id": email["id"]} if key else {"error": "Idempotency-Key required"}
            status = 200 if key else 422
        elif status == 401:
            answer = {"error": f"bad credentials: {self.headers.get('Authorization')}"}
        else:
            answer = {"error": f"scripted {status}"}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


def start_smtp(handler: SmtpRecorder, **kwargs: Any) -> Controller:
    """An aiosmtpd server on a free local port, recording into `handler`."""
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller
