"""The baseline of benchmarks/execution.py: the hand-written Prefect flow of the same shape as
benchmarks/sops/two-steps-then-approval.yaml, served by stock `serve()`.

    python -m benchmarks.hand_flow POLL_SECONDS      (PREFECT_API_URL and SOPFLOW_DATABASE_URL set)

Two tasks on the lead's row (score it, mark it working), a suspend with a `RunInput`, then one task.
"""

from __future__ import annotations

import sys
from typing import Literal

from prefect import flow, serve, task
from prefect.flow_runs import suspend_flow_run
from prefect.input import RunInput
from sqlalchemy.orm import Session

from sopflow.store.db import engine
from sopflow.store.models import Lead


class Decision(RunInput):
    decision: Literal["approve", "reject"]
    approver: str


@task
def score_lead(lead_id: str) -> int:
    with Session(engine()) as session, session.begin():
        lead = session.get_one(Lead, lead_id)
        lead.score = 40 * any(word in (lead.title or "").lower() for word in ("chief", "vp", "director")) \
            + 30 * ((lead.employees or 0) >= 200)
        return lead.score


@task
def set_status(lead_id: str, status: str) -> str:
    with Session(engine()) as session, session.begin():
        session.get_one(Lead, lead_id).status = status
    return status


@flow(name="hand-written", persist_result=False)
def hand_written(lead_id: str) -> str:
    score_lead(lead_id)
    set_status(lead_id, "working")
    decision = suspend_flow_run(wait_for_input=Decision, key="rep-check")
    return set_status(lead_id, "qualified" if decision.decision == "approve" else "disqualified")


if __name__ == "__main__":
    serve(hand_written.to_deployment(name="stock"), query_seconds=float(sys.argv[1]), print_starting_message=False)
