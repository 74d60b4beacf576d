"""Logs without personal data or secrets, wherever a line goes: the terminal, a log file, Prefect's API.

sopflow's own messages carry ids, never an email address; this filter is the second line of
defence for what other code puts in a message or an exception (a database error, a team's task
function, a mail server's answer): email addresses, phone numbers, bearer and basic credentials,
`token=` values, approval link tokens and the secrets sopflow is configured with are masked before any
handler writes.
"""

from __future__ import annotations

import logging
import os
import re

EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
PHONE = re.compile(r"(?<![\w+])\+\d[\d ()./-]{6,}\d")
APPROVAL_LINK = re.compile(r"(/approve/)[^\s\"'<>/?#]+")  # a signed approval link's token
CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}|([?&](?:token|key|secret|password)=)[^&\s\"'<>]+")
SECRET_SETTINGS = ("SOPFLOW_INTAKE_TOKEN", "SOPFLOW_SECRET_KEY", "SOPFLOW_EMAIL_HTTP_TOKEN", "PREFECT_API_AUTH_STRING",
                   "PREFECT_SERVER_API_AUTH_STRING")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configured_secrets() -> tuple[str, ...]:
    """The values of SECRET_SETTINGS set in this process's environment (long enough to mask safely)."""
    return tuple(secret for name in SECRET_SETTINGS if len(secret := os.environ.get(name) or "") >= 6)


def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """`text` with email addresses, phone numbers, credentials and the given secrets masked."""
    for secret in secrets:
        text = text.replace(secret, "[secret]")
    text = EMAIL.sub("[email]", text)
    text = PHONE.sub("[phone]", text)
    text = APPROVAL_LINK.sub(r"\1[secret]", text)
    return CREDENTIAL.sub(lambda m: f"{m.group(1)} [secret]" if m.group(1) else f"{m.group(2)}[secret]", text)


class Redact(logging.Filter):
    """Masks personal data, and the secrets configured when it was made, in a record's message and exception."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets = configured_secrets()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message, self.secrets)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text, self.secrets)
        return True


def redact_everywhere() -> None:
    """Add the filter to every handler configured now (root, Prefect's, uvicorn's); safe to call again."""
    loggers = [logging.getLogger(), *(logger for logger in logging.Logger.manager.loggerDict.values()
                                      if isinstance(logger, logging.Logger))]
    for handler in {handler for logger in loggers for handler in logger.handlers}:
        if not any(isinstance(f, Redact) for f in handler.filters):
            handler.addFilter(Redact())


def log_to_stderr(*names: str) -> None:
    """INFO and above of the `names` loggers to stderr, redacted, and not also through the root logger."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(Redact())
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        logger.propagate = False
