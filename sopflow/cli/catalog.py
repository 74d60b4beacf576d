"""The SOP and step names a filter may use, and the error naming the closest one."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from sopflow import settings
from sopflow.cli.output import fail
from sopflow.suggest import did_you_mean

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from sopflow.loader import LoadedSop
    from sopflow.schema import Sop


def sops_on_file() -> dict[str, Sop]:
    """The valid SOPs in the SOP directory (an invalid file elsewhere in it does not stop a listing)."""
    return {sop_id: loaded.sop for sop_id, loaded in loaded_on_file().items()}


def sops_to_check(*filters: str | None) -> dict[str, Sop]:
    """`sops_on_file` when a filter was given, to check the names it gives; else none: a listing without filters
    needs no SOP file, and reading them all takes a tenth of a second."""
    return sops_on_file() if any(name is not None for name in filters) else {}


def loaded_on_file() -> dict[str, LoadedSop]:
    """`sops_on_file` with where each came from (load it before opening a store transaction: it records versions)."""
    from sopflow.catalog import validate

    loaded, _errors = validate([settings.sop_dir()])
    return {item.sop.id: item for item in loaded}


def sop_on_file(command: str, sop_id: str) -> LoadedSop:
    """SOP `sop_id` as its file says now; exit 1 with a did-you-mean when no valid SOP file has that id."""
    on_file = loaded_on_file()
    if sop_id not in on_file:
        fail(command, f"no SOP is called {sop_id!r}{did_you_mean(sop_id, on_file)}; `sopflow validate` lists the SOPs")
    return on_file[sop_id]


def check_name(command: str, what: str, name: str | None, known: Iterable[str], listing: str) -> None:
    """Exit 2 with a did-you-mean when `name` is given and is not one of `known`."""
    known = list(known)
    if name is not None and name not in known:
        fail(command, f"no {what} is called {name!r}{did_you_mean(name, known)}; {listing}", code=2)


def check_sop(command: str, session: Session, sop_id: str | None, sops: dict[str, Sop]) -> None:
    """`sop_id` names an SOP on file or one the store has runs of."""
    from sopflow.store import runs

    if sop_id is not None:  # spares the query when there is nothing to check
        known = set(sops) | set(runs.sop_ids(session))
        check_name(command, "SOP", sop_id, known, "`sopflow validate` lists the SOPs")
