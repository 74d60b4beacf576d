"""Every SOP's compiled flow as a module-level name: `flows.sops:<sop id, - as _>`.

Names resolve on first access (PEP 562), from the SOP directory configured at that time,
so a served deployment or a worker can load and resume a flow in a fresh process.
A run follows the version of its SOP it started on: resumed after the file changed, it
runs the stored text of that version, not the file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from prefect import Flow
from prefect.client.schemas.objects import State

from flows.interpreter import run_plan
from sopflow import settings
from sopflow.catalog import load_all
from sopflow.loader import LoadedSop
from sopflow.plan import Plan, compile_plan
from sopflow.schema import Sop
from sopflow.store.db import transaction
from sopflow.versioning import followed_by_run


def forget_if_changed(directory: Path) -> None:
    """Drop what was compiled from `directory` when its files changed since (a warm worker's parent compiled them
    once; after `sopflow deploy` of new or edited SOPs, its next run compiles them again)."""
    now = _fingerprint(directory)
    if _compiled_from.get(directory, now) != now:
        for cached in (sops_in, plans, flows_in):
            cached.cache_clear()
    _compiled_from[directory] = now


def _fingerprint(directory: Path) -> tuple[tuple[str, int, int], ...]:
    """Each file under `directory` (SOPs, templates) by name, size and modification time: a few stat calls."""
    found = sorted(p for p in directory.rglob("*") if p.is_file())
    return tuple((str(p), (st := p.stat()).st_size, st.st_mtime_ns) for p in found)


_compiled_from: dict[Path, tuple[tuple[str, int, int], ...]] = {}


@lru_cache(maxsize=4)
def sops_in(directory: Path) -> dict[str, LoadedSop]:
    """Every SOP in `directory` as its file says now, by SOP id."""
    return load_all(directory)


@lru_cache(maxsize=4)
def plans(directory: Path) -> dict[str, Plan]:
    """Every SOP's plan in `directory`, by SOP id."""
    return {sop_id: compile_plan(loaded) for sop_id, loaded in sops_in(directory).items()}


def plan_for_run(directory: Path, sop_id: str, lead_id: str) -> tuple[Plan, str]:
    """The plan the run of `sop_id` for `lead_id` follows, and its text: the version the run started on
    (when it has started and the file changed since), else the file's."""
    current = sops_in(directory)[sop_id]
    with transaction() as session:
        followed = followed_by_run(session, current, lead_id)
    return (plans(directory)[sop_id] if followed is current else compile_plan(followed)), followed.text


def build_flow(sop: Sop) -> Flow:
    """The Prefect flow for `sop`: named after it, one parameter (the lead id, no personal data)."""
    sop_id = sop.id

    def run_sop(lead_id: str) -> dict[str, str] | State:
        plan, text = plan_for_run(settings.sop_dir(), sop_id, lead_id)
        return run_plan(plan, lead_id, text)

    run_sop.__name__ = run_sop.__qualname__ = sop.flow_attr
    run_sop.__doc__ = f"{sop.name} (SOP {sop.id} v{sop.version}).\n\nObjective: {sop.objective.statement}"
    return Flow(run_sop, name=sop.id, version=str(sop.version), description=sop.name,
                flow_run_name="lead-{lead_id}", persist_result=False)


@lru_cache(maxsize=4)
def flows_in(directory: Path) -> dict[str, Flow]:
    """Every SOP's flow in `directory`, by module-level name."""
    return {plan.sop.flow_attr: build_flow(plan.sop) for plan in plans(directory).values()}


def __getattr__(name: str) -> Flow:
    if name.startswith("__"):
        raise AttributeError(name)
    compiled = flows_in(settings.sop_dir())
    if name not in compiled:
        raise AttributeError(f"no SOP compiles to flows.sops.{name}; known: {', '.join(sorted(compiled))}")
    return compiled[name]
