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


def prefect_database_url() -> str | None:
    """The database of the Prefect server `sopflow up` starts (`SOPFLOW_PREFECT_DATABASE_URL`; unset: SQLite under
    home), as the async driver Prefect's server needs: `postgresql://user@host/db` becomes `postgresql+asyncpg://`."""
    raw = os.environ.get("SOPFLOW_PREFECT_DATABASE_URL")
    if not raw:
        return None
    scheme, separator, rest = raw.partition("://")
    if not separator or not rest:
        raise ValueError("SOPFLOW_PREFECT_DATABASE_URL is not a database URL; set it to e.g. "
                         "postgresql://prefect@127.0.0.1:5432/prefect")
    if scheme not in ("postgresql", "postgres", "postgresql+asyncpg", "postgresql+psycopg"):
        raise ValueError(f"SOPFLOW_PREFECT_DATABASE_URL starts with {scheme}://; Prefect's server runs on PostgreSQL "
                         "(postgresql://user:password@host:5432/db) or, when unset, on SQLite")
    return f"postgresql+asyncpg://{rest}"


def sop_dir() -> Path:
    """Where the SOP files live (`SOPFLOW_SOP_DIR`, default the project's sop_definitions/)."""
    return Path(os.environ.get("SOPFLOW_SOP_DIR") or PROJECT_ROOT / "sop_definitions")


def intake_token() -> str | None:
    """Bearer token the HTTP intake requires (`SOPFLOW_INTAKE_TOKEN`)."""
    return os.environ.get("SOPFLOW_INTAKE_TOKEN") or None


def intake_read_timeout() -> float:
    """Seconds a request's headers, and then its body, may take to arrive (`SOPFLOW_INTAKE_READ_TIMEOUT`, default 10)."""
    raw = os.environ.get("SOPFLOW_INTAKE_READ_TIMEOUT") or "10"
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"SOPFLOW_INTAKE_READ_TIMEOUT={raw!r} is not a number of seconds; set it to e.g. 10") from None
    if not 0 < seconds <= 600:
        raise ValueError(f"SOPFLOW_INTAKE_READ_TIMEOUT={raw!r} must be between 0 and 600 seconds")
    return seconds


def intake_workers() -> int:
    """Processes answering the intake under `sopflow up` (`SOPFLOW_INTAKE_WORKERS`, default 2)."""
    return _whole_number("SOPFLOW_INTAKE_WORKERS", 2, 64)


def flow_run_slots() -> int:
    """Flow runs `sopflow up` executes at once; more wait their turn (`SOPFLOW_FLOW_RUN_SLOTS`, default 4).

    Runs suspended at an approval or a wait hold no slot.
    """
    return _whole_number("SOPFLOW_FLOW_RUN_SLOTS", 4, 256)


def _whole_number(name: str, default: int, most: int) -> int:
    raw = os.environ.get(name) or str(default)
    if not raw.isdigit() or not 1 <= int(raw) <= most:
        raise ValueError(f"{name}={raw!r} must be a whole number from 1 to {most}; set it to e.g. {default}")
    return int(raw)


def public_url() -> str:
    """Where recipients reach sopflow's intake, for the links in emails (`SOPFLOW_PUBLIC_URL`, else the intake a
    running `sopflow up` announced in home, so a worker sharing the home links to it)."""
    announced = public_url_file()
    found = os.environ.get("SOPFLOW_PUBLIC_URL") or (announced.read_text().strip() if announced.is_file() else "")
    return (found or "http://127.0.0.1:8765").rstrip("/")


def public_url_file() -> Path:
    """Where `sopflow up` writes the public URL of its intake, for the workers and commands sharing its home."""
    return home() / "public-url"


def _kept_secret(name: str, make: str) -> str:
    """The secret kept in `home()/name` (mode 600), written as `make` by whichever process comes first."""
    path = home() / name
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another sopflow process made it a moment ago
            pass
        else:
            with os.fdopen(fd, "w") as out:
                out.write(make)
    return path.read_text().strip()


def secret_key() -> bytes:
    """Key that signs unsubscribe links: `SOPFLOW_SECRET_KEY`, else one made once and kept in home."""
    return (os.environ.get("SOPFLOW_SECRET_KEY") or _kept_secret("secret-key", secrets.token_urlsafe(32))).encode()


def prefect_auth_file() -> Path:
    """Where the login of the Prefect server `sopflow up` starts is kept: one `user:password` line."""
    return home() / "prefect-auth"


def prefect_server_auth_string() -> str:
    """The login the Prefect server `sopflow up` starts requires (basic auth, API and UI alike).

    `PREFECT_SERVER_API_AUTH_STRING` when set, else a random `sopflow:<password>` made once and
    kept in `prefect_auth_file()`.
    """
    explicit = os.environ.get("PREFECT_SERVER_API_AUTH_STRING")
    return explicit or _kept_secret(prefect_auth_file().name, f"sopflow:{secrets.token_urlsafe(24)}")


def prefect_auth_string() -> str | None:
    """The login sopflow's commands and flows give the Prefect API: `PREFECT_API_AUTH_STRING`, else the kept one."""
    explicit = os.environ.get("PREFECT_API_AUTH_STRING")
    if explicit:
        return explicit
    path = prefect_auth_file()
    return path.read_text().strip() or None if path.is_file() else None


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


def dispatcher_port_file() -> Path:
    """Where `sopflow up` writes the port its dispatcher takes nudges on (`sopflow.services.nudge`)."""
    return home() / "dispatcher-port"


def ui_url() -> str | None:
    """Base address of the Prefect UI (`PREFECT_UI_URL`, else derived from the API URL)."""
    explicit = os.environ.get("PREFECT_UI_URL")
    if explicit:
        return explicit.rstrip("/")
    api = prefect_api_url()
    return api.rstrip("/").removesuffix("/api") if api else None
