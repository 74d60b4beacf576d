"""`sopflow review`: decide an SOP's open review from the terminal, as its review run's form in the Prefect UI does."""

from __future__ import annotations

from typing import Annotated

import typer

from sopflow.cli.app import app
from sopflow.cli.approvals import OFF_ROSTER, send_answer
from sopflow.cli.catalog import sop_on_file
from sopflow.cli.output import choices, fail, say

Outcome = choices("Outcome", ["keep", "revise", "retire"])


@app.command()
def review(
    sop_id: Annotated[str, typer.Argument(help="The SOP's id, as `sopflow sops` lists it.", show_default=False)],
    outcome: Annotated[Outcome, typer.Argument(help="keep, revise (say what must change in --notes) or retire.",
                                               show_default=False)],
    reviewer: Annotated[str, typer.Option(help="Your name, as the roster of the SOP's review owner role lists it.")],
    notes: Annotated[str, typer.Option(help="Why; for revise, what must change.")] = "",
) -> None:
    """Decide an SOP's open review: keep, revise or retire. Checked before anything is sent (exit 3 off the roster)."""
    from sopflow.store import reviews
    from sopflow.store.db import transaction
    from tasks.review import OUTCOME_WORDS, notes_problem, reviewed_sop, reviewer_problem

    current = sop_on_file("review", sop_id)
    with transaction() as session:
        waiting = reviews.open_review(session, sop_id)
        if waiting is None or waiting.flow_run_id is None:
            due = reviews.next_due(session, current)
            when = f"next due {due}" if due else "retired, it is not reviewed again"
            fail("review", f"no review of {sop_id} is open ({when}); the daily sopflow-reviews-due run opens it")
        run_id, version, loaded = waiting.flow_run_id, waiting.sop_version, reviewed_sop(session, waiting)
    if problem := reviewer_problem(loaded, reviewer):
        fail("review", f"{problem}; nothing was sent", code=OFF_ROSTER)
    if problem := notes_problem(outcome.value, notes):
        fail("review", f"--notes: {problem}; nothing was sent", code=2)
    send_answer(run_id, {"outcome": outcome.value, "reviewer": reviewer, "notes": notes})
    say(f"{sop_id} v{version} {OUTCOME_WORDS[outcome.value]} by {reviewer.strip()}; review run {run_id} records it")
