"""Commands about SOP files and the local stack: up, validate, schema."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Annotated

import typer

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.output import fail, say


def _pool_name(name: str | None) -> str | None:
    """A work pool name Prefect takes: not blank, none of / % & > <, at most 100 characters."""
    if name is not None and (not name.strip() or re.search(r"[/%&><]", name) or len(name) > 100):
        raise typer.BadParameter("a work pool name is 1 to 100 characters, none of / % & > <, e.g. sales")
    return name


@app.command()
def up(
    port: Annotated[int, typer.Option(help="Port of the Prefect server and its UI.")] = 4200,
    intake_port: Annotated[int, typer.Option(help="Port of the HTTP lead intake.")] = 8765,
    pool: Annotated[str | None, typer.Option(help=(
        "Deploy the flows into this process work pool for workers to run (`prefect worker start --pool NAME`) "
        "instead of serving them here."), show_default=False, callback=_pool_name)] = None,
) -> None:
    """Start a local Prefect server (unless PREFECT_API_URL is set), the lead intake, and serve every SOP (until
    Ctrl-C)."""
    from deployments.up import run_up

    run_up(port, intake_port, pool)


@app.command()
def deploy(
    pool: Annotated[str, typer.Option(help="The process work pool to deploy into; made if it does not exist.",
                                          callback=_pool_name)],
) -> None:
    """Deploy every SOP flow and sopflow's scheduled flows into a process work pool, for
    `prefect worker start --pool NAME` on any machine with sopflow installed."""
    from sopflow.catalog import load_all

    load_all(against_store=True)  # nothing deploys while a SOP is invalid
    from deployments.pool import deploy_to_pool

    names = deploy_to_pool(pool)
    say(f"deployed {len(names)} flow(s) into work pool {pool!r}: {', '.join(names)}")
    say(f"start workers with: prefect worker start --pool {pool}")


@app.command()
def worker(
    pool: Annotated[str, typer.Option(help="The process work pool to take flow runs from (see `sopflow deploy`).",
                                          callback=_pool_name)],
    name: Annotated[str | None, typer.Option(help="The worker's name in the Prefect UI.", show_default=False)] = None,
) -> None:
    """Run a work pool's flow runs here, each forked warm (as `sopflow up` runs them), until Ctrl-C;
    `prefect worker start --pool NAME` runs them too, each in a new interpreter."""
    try:
        slots = settings.flow_run_slots()
    except ValueError as exc:
        fail("worker", str(exc))
    from deployments.warm_worker import run_worker
    from sopflow.services.connection import prefect_api, require_prefect

    with prefect_api() as url:
        require_prefect(url)
        run_worker(pool, name, slots, say)


@app.command()
def validate(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="SOP files or directories to check (default: the SOP directory).", show_default=False)] = None,
) -> None:
    """Check SOP files; prints FILE:LINE: FIELD: reason for each error (exit 1) and each warning (exit 0)."""
    from sopflow.capacity import capacity_files, check_capacity, is_capacity_file
    from sopflow.catalog import validate_report

    where = list(paths or []) or [settings.sop_dir()]
    report = validate_report([p for p in where if not is_capacity_file(p)], against_store=True)
    loaded, errors = report.loaded, report.errors + check_capacity(where, report.loaded)  # and the S&OP capacity file
    for problem in [*errors, *report.warnings]:
        print(problem, file=sys.stderr)
    planning = capacity_files(where)
    if not errors and not loaded and not planning:
        fail("validate", f"no SOP files found in {', '.join(map(str, where))}; give SOP files or a directory of them")
    if errors:
        raise typer.Exit(1)
    if loaded:
        say(f"{len(loaded)} SOP(s) valid: {', '.join(item.sop.id for item in loaded)}")
    if planning:
        say(f"capacity file valid: {', '.join(map(str, planning))}")


@app.command()
def schema(
    write: Annotated[bool, typer.Option("--write", help=(
        "Write it to sop_definitions/sop.schema.json, and the format reference to docs/sop-format.md."))] = False,
) -> None:
    """Print the JSON schema of SOP files (for editors), or write it and the format reference with --write."""
    from sopflow.schema_file import schema_text, write_all

    if write:
        for path in write_all():
            say(f"wrote {path}")
    else:
        say(schema_text().removesuffix("\n"))
