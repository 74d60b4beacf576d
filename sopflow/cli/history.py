"""Version commands: history (an SOP's stored versions) and diff (what changed between two of them)."""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Annotated

import typer

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.output import Json, Row, emit, fail, say
from sopflow.suggest import did_you_mean

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sopflow.store.models import SopVersion

SopId = Annotated[str, typer.Argument(help="The SOP's id, as `sopflow validate` lists it.", show_default=False)]
Version = Annotated[int, typer.Argument(help="A version number, as `sopflow history` lists them.", min=1)]


def _files_read() -> dict[str, str]:
    """The content hash of each valid SOP on file, by id; reading them stores their texts (the store made first)."""
    from sopflow.catalog import validate_report
    from sopflow.store.db import engine

    engine()
    loaded = validate_report([settings.sop_dir()], against_store=True).loaded
    return {item.sop.id: item.content_hash for item in loaded}


def _stored_versions(command: str, session: Session, sop_id: str, on_file: dict[str, str]) -> list[SopVersion]:
    """The stored versions of `sop_id`, oldest first; exit 1 naming the closest SOP when it has none."""
    from sopflow.store import runs, versions

    found = versions.versions_of(session, sop_id)
    if not found:
        known = set(on_file) | set(versions.known_sop_ids(session)) | set(runs.sop_ids(session))
        fail(command, f"no SOP called {sop_id!r} has stored versions{did_you_mean(sop_id, known - {sop_id})}")
    return found


def _reviews_by_hash(session: Session, sop_id: str) -> dict[str, list[Row]]:
    """The SOP's decided reviews, oldest first, by the content hash each reviewed."""
    from sopflow.store import reviews

    found: dict[str, list[Row]] = {}
    for review in reviews.decided(session, sop_id):
        found.setdefault(review.sop_hash, []).append({
            "outcome": review.outcome, "reviewer": review.reviewer, "decided_at": review.decided_at,
            "notes": review.notes, "due_on": review.due_on.isoformat()})
    return found


def _review_words(reviews: list[Row]) -> str:
    """Reviews as a table cell: "keep by Dana Reyes 2026-11-20; revise by ..."."""
    return "; ".join(f"{r['outcome']} by {r['reviewer']} {r['decided_at']:%Y-%m-%d}" for r in reviews)


@app.command()
def history(sop_id: SopId, as_json: Json = False) -> None:
    """List an SOP's versions, oldest first: when each was first seen, its runs, which is on file, what reviews said."""
    from sopflow.store import versions
    from sopflow.store.db import transaction

    on_file = _files_read()
    with transaction() as session:
        found, counts = _stored_versions("history", session, sop_id, on_file), versions.run_counts(session, sop_id)
        reviewed = _reviews_by_hash(session, sop_id)
    rows = [{"sop": v.sop_id, "version": v.version, "content_hash": v.content_hash, "first_seen": v.first_seen,
             "runs": counts.get(v.content_hash, 0), "on_file": on_file.get(sop_id) == v.content_hash,
             "reviews": reviewed.get(v.content_hash, [])} for v in found]
    columns = [("Version", lambda r: f"v{r['version']}"), ("Hash", lambda r: r["content_hash"][:12]),
               ("First seen (UTC)", lambda r: r["first_seen"]), ("Runs", lambda r: r["runs"]),
               ("On file", lambda r: "yes" if r["on_file"] else ""), ("Reviews", lambda r: _review_words(r["reviews"]))]
    emit(as_json, rows, columns, f"no versions of {sop_id} are stored")


@app.command()
def diff(sop_id: SopId, old: Version, new: Version) -> None:
    """Show what changed between two versions of an SOP, as a unified diff of their texts."""
    from sopflow.store import versions
    from sopflow.store.db import transaction

    on_file = _files_read()
    with transaction() as session:
        _stored_versions("diff", session, sop_id, on_file)
        texts = versions.latest_by_version(session, sop_id)
    for version in (old, new):
        if version not in texts:
            fail("diff", f"{sop_id} has no version {version}; stored versions: {', '.join(map(str, sorted(texts)))}")
    before, after = texts[old], texts[new]
    lines = difflib.unified_diff(before.text.splitlines(), after.text.splitlines(), lineterm="",
                                 fromfile=f"{sop_id} v{old} ({before.content_hash[:12]})",
                                 tofile=f"{sop_id} v{new} ({after.content_hash[:12]})")
    say(*lines)
