"""The serve entry: one deployment per SOP, loadable by module path in a fresh process."""

from __future__ import annotations

import asyncio
import os

from prefect.deployments.runner import RunnerDeployment
from prefect.exceptions import TerminationSignal
from prefect.settings import PREFECT_RUNNER_POLL_FREQUENCY
from prefect.types.entrypoint import EntrypointType

from flows.audit import audit_runs
from flows.rescore import rescore
from flows.review import review_sop, start_due_reviews
from flows.snop import snop
from deployments.warm_start import WarmRunner
from flows.sops import flows_in, plans
from sopflow import settings
from sopflow.store import reviews
from sopflow.store.db import transaction

# sopflow's own flows: (flow, deployment name, cron or None for started by another flow, description)
CHORES = [
    (rescore, "daily", "0 5 * * *", "Rescores every open lead with the lead's scoring model (the score step marked "
     "scores_lead); old engagement decays."),
    (start_due_reviews, "daily", "0 7 * * *", "Opens the review of every SOP due by its review cadence (or never "
     "reviewed) and starts one review run for each."),
    (review_sop, "review", None, "One SOP's review: the packet of how it ran, then keep, revise or retire from its "
     "review owner."),
    (audit_runs, "weekly", "0 6 * * 1", "Audits the last week's runs (and every open one) against the SOP versions "
     "they followed: findings, adherence per SOP, step and person, KPI trend charts."),
    (snop, "monthly", "0 6 1 * *", "The month's S&OP plan: open opportunities' weighted demand by expected close "
     "month against the capacity in planning/capacity.yaml, signed off by the sales and operations leaders."),
]


def sop_deployments() -> list[RunnerDeployment]:
    """A deployment for every SOP, the rescoring and the reviews: new-lead SOPs are started per lead, scheduled
    ones by cron (unless a review retired them: their running runs still resume, none starts)."""
    directory = settings.sop_dir()
    flows = flows_in(directory)
    with transaction() as session:
        retired = reviews.retired(session, list(plans(directory)))
    deployments = []
    for plan in plans(directory).values():
        sop = plan.sop
        deployment = flows[sop.flow_attr].to_deployment(
            name=sop.id,
            version=f"v{sop.version} ({plan.content_hash[:12]})",
            description=("RETIRED by its review: no new runs start. " if sop.id in retired else "")
            + f"{sop.name}. Objective: {sop.objective.statement}. Owner: {sop.owner}.",
            tags=["sopflow", f"owner-role:{sop.review.owner}"],
            entrypoint_type=EntrypointType.MODULE_PATH,
            **({"cron": sop.trigger.cron} if sop.trigger.cron and sop.id not in retired else {}),
        )
        deployments.append(deployment)
    for chore, name, cron, description in CHORES:
        deployments.append(chore.to_deployment(name=name, cron=cron, description=description, tags=["sopflow"],
                                               entrypoint_type=EntrypointType.MODULE_PATH))
    return deployments


def sop_runner(deployments: list[RunnerDeployment], poll_seconds: float = 1.0) -> WarmRunner:
    """The runner of `deployments`: it polls for runs every `poll_seconds` (PREFECT_RUNNER_POLL_FREQUENCY wins) and
    when woken, starts each warm (its own process, forked from a parent that has imported the flows), at most
    `settings.flow_run_slots()` at once."""
    if os.environ.get("PREFECT_RUNNER_POLL_FREQUENCY"):
        poll_seconds = PREFECT_RUNNER_POLL_FREQUENCY.value()
    runner = WarmRunner(pause_on_shutdown=False, query_seconds=poll_seconds, limit=settings.flow_run_slots())
    for deployment in deployments:
        runner.add_deployment(deployment)
    return runner


def serve_sops(runner: WarmRunner) -> None:
    """Run `runner` until interrupted."""
    try:
        asyncio.run(runner.start())
    except (KeyboardInterrupt, TerminationSignal):
        pass
