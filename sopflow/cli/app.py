"""The `sopflow` command tree; the commands live in the modules next to this one."""

from __future__ import annotations

import typer

SETTINGS = {"help_option_names": ["-h", "--help"]}

app = typer.Typer(
    name="sopflow", no_args_is_help=True, rich_markup_mode="markdown", add_completion=False,
    pretty_exceptions_enable=False, context_settings=SETTINGS,
    help="Sales SOPs as running, audited processes: validate SOP files, add leads, answer approvals, "
         "and see what happened.",
)
lead_app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown", context_settings=SETTINGS,
                       help="Add a lead, record what it did, or show everything that happened to it.")
app.add_typer(lead_app, name="lead")
