"""`sopflow db`: the store's schema revision, and the upgrade that brings a store an older sopflow made to it."""

from __future__ import annotations

import typer

from sopflow import settings
from sopflow.cli.app import SETTINGS, app
from sopflow.cli.output import Json, print_json, say

db_app = typer.Typer(no_args_is_help=True, rich_markup_mode="markdown", context_settings=SETTINGS,
                     help="The store's schema: which revision it is at, and upgrading it to this sopflow's.")
app.add_typer(db_app, name="db")


@db_app.command()
def upgrade(as_json: Json = False) -> None:
    """Bring the store (SOPFLOW_DATABASE_URL) to this sopflow's schema; nothing to do when it is there already."""
    from sopflow.store import schema_version

    done = schema_version.upgrade(settings.database_url())
    if as_json:
        print_json({**done._asdict(), "upgraded": done.changed})
    else:
        say(str(done))


@db_app.command()
def current(as_json: Json = False) -> None:
    """Show the store's schema revision and whether it is the one this sopflow needs."""
    from sopflow.store import schema_version

    url = settings.database_url()
    found = schema_version.current(url)
    store = schema_version.shown(url)
    if as_json:
        print_json({"store": store, "revision": found, "head": schema_version.HEAD})
    elif found == schema_version.HEAD:
        say(f"store {store} is at {found} (current)")
    elif found is None:
        say(f"store {store} has no schema yet: the first command that uses it makes it at {schema_version.HEAD}")
    else:
        say(f"store {store} is at {found}; this sopflow needs {schema_version.HEAD}: run `sopflow db upgrade`")
