"""Settings from the environment, read when used (never at import time)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def home() -> Path:
    """sopflow's data directory (`SOPFLOW_HOME`, default `~/.sopflow`)."""
    return Path(os.environ.get("SOPFLOW_HOME") or Path.home() / ".sopflow").expanduser()


def database_url() -> str:
    """The store's SQLAlchemy URL (`SOPFLOW_DATABASE_URL`, default SQLite under home)."""
    return os.environ.get("SOPFLOW_DATABASE_URL") or f"sqlite:///{home() / 'sopflow.db'}"


def sop_dir() -> Path:
    """Where the SOP files live (`SOPFLOW_SOP_DIR`, default the project's sop_definitions/)."""
    return Path(os.environ.get("SOPFLOW_SOP_DIR") or PROJECT_ROOT / "sop_definitions")


def intake_token() -> str | None:
    """Bearer token the HTTP intake requires (`SOPFLOW_INTAKE_TOKEN`)."""
    return os.environ.get("SOPFLOW_INTAKE_TOKEN") or None


def public_url() -> str:
    """Where recipients reach sopflow's intake, for unsubscribe links (`SOPFLOW_PUBLIC_URL`)."""
    return (os.environ.get("SOPFLOW_PUBLIC_URL") or "http://127.0.0.1:8765").rstrip("/")


def secret_key() -> bytes:
    """Key that signs unsubscribe links: `SOPFLOW_SECRET_KEY`, else one made once and kept in home."""
    explicit = os.environ.get("SOPFLOW_SECRET_KEY")
    if explicit:
        return explicit.encode()
    path = home() / "secret-key"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32))
    return path.read_text().strip().encode()


def prefect_api_url() -> str | None:
    """The Prefect API: `PREFECT_API_URL`, else the one a running `sopflow up` announced in home."""
    explicit = os.environ.get("PREFECT_API_URL")
    if explicit:
        return explicit
    announced = api_url_file()
    return announced.read_text().strip() or None if announced.is_file() else None


def api_url_file() -> Path:
    """Where `sopflow up` writes the API URL of the server it started, for the other commands."""
    return home() / "prefect-api-url"


def ui_url() -> str | None:
    """Base address of the Prefect UI (`PREFECT_UI_URL`, else derived from the API URL)."""
    explicit = os.environ.get("PREFECT_UI_URL")
    if explicit:
        return explicit.rstrip("/")
    api = prefect_api_url()
    return api.rstrip("/").removesuffix("/api") if api else None
