"""Running an audit: ask Prefect about the open runs' flow runs, audit, and store the audit whole."""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from datetime import datetime
from uuid import UUID

from sopflow.audit import AuditResult, audit
from sopflow.loader import LoadedSop
from sopflow.store import audits, runs
from sopflow.store.db import transaction

StateReader = Callable[[Collection[str]], Mapping[str, str]]
BATCH = 200


def prefect_states(flow_run_ids: Collection[str]) -> dict[str, str]:
    """The state type (RUNNING, CRASHED, ...) of each of these flow runs, from the Prefect API in use."""
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    found: dict[str, str] = {}
    with get_client(sync_client=True) as client:
        ids = sorted(flow_run_ids)
        for chunk in (ids[start:start + BATCH] for start in range(0, len(ids), BATCH)):
            query = FlowRunFilter(id=FlowRunFilterId(any_=[UUID(flow_run_id) for flow_run_id in chunk]))
            for flow_run in client.read_flow_runs(flow_run_filter=query, limit=BATCH):
                if flow_run.state is not None:
                    found[str(flow_run.id)] = flow_run.state.type.value
    return found


def run_audit(sops: Mapping[str, LoadedSop], since: datetime, until: datetime, sop_id: str | None = None,
              flow_run_id: str | None = None, read_states: StateReader = prefect_states) -> tuple[int, AuditResult]:
    """Audit [since, until) (and the open runs) and store the audit with its findings; (audit id, result)."""
    with transaction() as session:
        open_flow_runs = runs.open_flow_run_ids(session, sop_id)
    states = read_states(open_flow_runs) if open_flow_runs else {}
    with transaction() as session:
        result = audit(session, sops, since, until, sop_id, states)
        return audits.record_audit(session, result, flow_run_id).id, result
