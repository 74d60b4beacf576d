"""`sopflow show SOP_ID`: the SOP as a job aid for training, in Markdown or as one HTML file."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.output import choices, fail, picked, say
from sopflow.suggest import did_you_mean

if TYPE_CHECKING:
    from sopflow.loader import LoadedSop

Format = choices("Format", ["md", "html"])
VERSIONS_MODULE = "sopflow.store.versions"


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

    loaded = _stored_version(sop_id, version) if version is not None else _on_file(sop_id)
    text = job_aid_html(loaded) if picked(format) == "html" else job_aid_markdown(loaded)
    if output is None:
        say(text.removesuffix("\n"))
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        fail("show", f"cannot write {output}: {exc.strerror or exc}; choose a writable path")
    say(f"wrote {output}")


def _on_file(sop_id: str) -> LoadedSop:
    """The current file of SOP `sop_id`; exit 1 with a did-you-mean when no valid SOP file has that id."""
    from sopflow.catalog import validate

    loaded, _errors = validate([settings.sop_dir()])
    found = {item.sop.id: item for item in loaded}
    if sop_id not in found:
        fail("show", f"no SOP is called {sop_id!r}{did_you_mean(sop_id, found)}; `sopflow validate` lists the SOPs")
    return found[sop_id]


def _stored_version(sop_id: str, version: int) -> LoadedSop:
    """Version `version` of SOP `sop_id` as the store keeps it (versions arrive with `sopflow.store.versions`)."""
    try:
        versions = importlib.import_module(VERSIONS_MODULE)
    except ModuleNotFoundError as exc:
        if exc.name != VERSIONS_MODULE:
            raise
        fail("show", "versions are not stored yet; leave out --version to show the current SOP file")
    from sopflow.loader import load_sop_text
    from sopflow.store.db import transaction

    with transaction() as session:
        stored = [row for row in versions.versions_of(session, sop_id) if row.version == version]
        text = stored[-1].text if stored else None  # an edit that kept the number: its latest text
    if text is None:
        fail("show", f"SOP {sop_id!r} has no stored version {version}; leave out --version for the current file")
    return load_sop_text(text, settings.sop_dir() / f"{sop_id}.yaml")
