"""All SOPs in a directory, loaded and checked together."""

from __future__ import annotations

from pathlib import Path

from sopflow import settings
from sopflow.errors import SopError, SopInvalid
from sopflow.loader import LoadedSop, load_sop, sop_files


def validate(paths: list[Path]) -> tuple[list[LoadedSop], list[SopError]]:
    """Load every SOP under `paths`; return the valid ones and every error found."""
    loaded: list[LoadedSop] = []
    errors: list[SopError] = []
    for path in sop_files(paths):
        try:
            loaded.append(load_sop(path))
        except SopInvalid as exc:
            errors.extend(exc.errors)
    seen: dict[str, Path] = {}
    for item in loaded:
        if item.sop.id in seen:
            line = item.lines.get(("id",), 1)
            errors.append(SopError(item.path, line, "id", f"SOP id {item.sop.id!r} is also used by {seen[item.sop.id]}"))
        seen.setdefault(item.sop.id, item.path)
    return loaded, sorted(errors)


def load_all(directory: Path | None = None) -> dict[str, LoadedSop]:
    """Every SOP in `directory` (default: the configured SOP dir) by id; SopInvalid if any is invalid."""
    directory = directory or settings.sop_dir()
    if not directory.is_dir():
        raise SopInvalid([SopError(directory, 0, "(dir)", "SOP directory not found; set SOPFLOW_SOP_DIR")])
    loaded, errors = validate([directory])
    if errors:
        raise SopInvalid(errors)
    return {item.sop.id: item for item in loaded}


def sops_started_by(event: str, status: str | None = None, sops: dict[str, LoadedSop] | None = None) -> list[str]:
    """The SOPs a lead event starts: `new_lead`, or `lead_status` with the lead's new status."""
    sops = load_all() if sops is None else sops
    return sorted(sop_id for sop_id, loaded in sops.items() if loaded.sop.trigger.starts_on(event, status))
