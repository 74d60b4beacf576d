"""SOP files against the store: record each text loaded, refuse new content under a version that ran, and warn
about SOPs a review sent back for revision or retired."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from sopflow import settings, yamlpos
from sopflow.errors import SopError, SopWarning
from sopflow.loader import LoadedSop, load_sop_text

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sopflow.schema import Sop
    from sopflow.store.models import SopRun

logger = logging.getLogger(__name__)


def followed_by_run(session: Session, current: LoadedSop, lead_id: str, warn_unstored: bool = True) -> LoadedSop:
    """The SOP the run of `current`'s SOP for `lead_id` follows: the stored version it started on, else `current`.

    A stored version is checked again as it loads; its templates and error locations are `current`'s file's.
    `warn_unstored`: log when the run started on a version whose text was never stored (the run's log says so).
    """
    from sopflow.store import versions

    sop_id = current.sop.id
    pinned = versions.started_on(session, sop_id, lead_id)
    if pinned in (None, current.content_hash):
        return current
    stored = stored_sop(session, sop_id, pinned, current.path)
    if stored is None:  # started before sopflow stored versions: the file is all there is
        if warn_unstored:
            logger.warning("SOP %s's version %s, that lead %s's run started on, is not stored; the run goes on "
                           "with the file's.", sop_id, pinned[:12], lead_id)
        return current
    return stored


def stored_sop(session: Session, sop_id: str, content_hash: str, path: Path) -> LoadedSop | None:
    """The stored text of `sop_id` with this content hash, loaded and checked again as if it were at `path`;
    None when it is not stored."""
    from sopflow.store import versions

    text = versions.text_of(session, sop_id, content_hash)
    return None if text is None else _stored(text, path)


@lru_cache(maxsize=32)
def _stored(text: str, path: Path) -> LoadedSop:
    return load_sop_text(text, path)


def sop_of_run(session: Session, run: SopRun) -> Sop | None:
    """The SOP run `run` follows: the stored version it started on, else the valid file of its SOP; None if neither."""
    from sopflow.catalog import validate
    from sopflow.errors import SopInvalid

    directory = settings.sop_dir()
    if run.sop_hash:
        try:
            stored = stored_sop(session, run.sop_id, run.sop_hash, directory / f"{run.sop_id}.yaml")
        except SopInvalid:  # checks grew stricter since it ran: the file may still serve
            stored = None
        if stored is not None:
            return stored.sop
    return next((item.sop for item in validate([directory])[0] if item.sop.id == run.sop_id), None)


def store_exists(url: str) -> bool:
    """Whether the store at `url` may hold anything: a SQLite file that exists, or any other database."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return True
    return bool(parsed.database) and parsed.database != ":memory:" and Path(parsed.database).is_file()


def version_errors(session: Session, loaded: Sequence[LoadedSop]) -> list[SopError]:
    """An error at the `version` line of each SOP whose version already has runs of other content."""
    from sopflow.store import versions

    sop_ids = {item.sop.id for item in loaded}
    ran, highest = versions.run_hashes(session, sop_ids), versions.highest_versions(session, sop_ids)
    errors = []
    for item in loaded:
        sop_id, version = item.sop.id, item.sop.version
        if ran.get((sop_id, version), set()) - {item.content_hash}:
            raise_to = max(highest.get(sop_id, 0), version) + 1
            errors.append(SopError(item.path, yamlpos.line_of(item.lines, ("version",)), "version", (
                f"version {version} already has runs with other content; raise version to {raise_to}")))
    return errors


def record_loaded(session: Session, loaded: Sequence[LoadedSop]) -> None:
    """Store the text of each of `loaded` not stored yet."""
    from sopflow.store import versions

    stored = versions.stored_hashes(session, {item.sop.id for item in loaded})
    for item in loaded:
        if (item.sop.id, item.content_hash) not in stored:
            versions.record_version(session, item.sop.id, item.sop.version, item.content_hash, item.text)


def review_warnings(session: Session, loaded: Sequence[LoadedSop]) -> dict[Path, SopWarning]:
    """A warning at the `review` line of each SOP a review retired or sent back for revision, by file."""
    from sopflow.store import reviews

    found = {}
    for item in loaded:
        done = reviews.decided(session, item.sop.id)
        status = reviews.status_of(done)[0]
        if status == "active":
            continue
        last = done[-1]
        by = f"the review of {last.decided_at:%Y-%m-%d} by {last.reviewer} (see `sopflow history {item.sop.id}`)"
        if status == "retired":
            reason = f"{by} retired this SOP: no new runs start; remove the file"
        elif last.sop_hash == item.content_hash:
            reason = f"{by} sent this version back for revision; change it and raise its version"
        else:
            reason = f"{by} sent v{last.sop_version} back for revision; this version is reviewed at the next daily review run"
        found[item.path] = SopWarning(item.path, yamlpos.line_of(item.lines, ("review",)), "review", reason)
    return found


def check_against_store(
    loaded: Sequence[LoadedSop], errors: Sequence[SopError]
) -> tuple[list[SopError], dict[Path, SopWarning]]:
    """Check `loaded` against the configured store and record the ones without errors; nothing without a store.

    Returns the version errors, and the review warnings by file. Validation never creates a store: with
    no SQLite file yet there are no runs to check against, and a database that cannot be reached is
    skipped (the SOPs are still checked on their own).
    """
    url = settings.database_url()
    if not loaded or not store_exists(url):
        return [], {}
    from sqlalchemy.exc import OperationalError

    from sopflow.store.db import transaction

    try:
        with transaction(url) as session:
            found = version_errors(session, loaded)
            failed = {error.file for error in [*errors, *found]}
            record_loaded(session, [item for item in loaded if item.path not in failed])
            warnings = review_warnings(session, loaded)
    except OperationalError:
        return [], {}
    return found, warnings
