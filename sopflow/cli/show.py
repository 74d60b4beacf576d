"""`sopflow show SOP_ID`: the SOP as a job aid for training, in Markdown or as one HTML file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.catalog import sop_on_file
from sopflow.cli.output import choices, fail, picked, say

if TYPE_CHECKING:
    from sopflow.loader import LoadedSop

Format = choices("Format", ["md", "html"])


@app.command()
def show(
    sop_id: Annotated[str, typer.Argument(help="The SOP's id, e.g. lead-qualification.", show_default=False)],
    format: Annotated[Format, typer.Option("--format", help="md: Markdown with a mermaid diagram; html: one "  # type: ignore[valid-type]
                                           "self-contained page with the diagram inline.")] = "md",  # type: ignore[assignment]
    version: Annotated[int | None, typer.Option("--version", help="A stored version of the SOP (default: the "
                                                "current file).", show_default=False)] = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write the job aid to this file instead of "
                                                "stdout.", show_default=False)] = None,
) -> None:
    """Print an SOP as a job aid: objective, roles, each step with its owner, SLA, checklist and emails, and a diagram."""
    from sopflow.jobaid import job_aid_html, job_aid_markdown

    loaded = _stored_version(sop_id, version) if version is not None else sop_on_file("show", sop_id)
    text = job_aid_html(loaded) if picked(format) == "html" else job_aid_markdown(loaded)
    if output is None:
        say(text.removesuffix("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail("show", f"cannot write {output}: {exc.strerror or exc}; choose a writable path")
    say(f"wrote {output}")


def _stored_version(sop_id: str, version: int) -> LoadedSop:
    """Version `version` of SOP `sop_id` as the store keeps it; exit 1 when it keeps no such version."""
    from sopflow.loader import load_sop_text
    from sopflow.store import versions
    from sopflow.store.db import transaction

    with transaction() as session:
        stored = versions.latest_by_version(session, sop_id).get(version)
    if stored is None:
        fail("show", f"SOP {sop_id!r} has no stored version {version}; leave out --version for the current file")
    return load_sop_text(stored.text, settings.sop_dir() / f"{sop_id}.yaml")
