"""`sopflow sops`: the SOP catalogue in one place, with each SOP's owners, next review and runs by state."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sopflow import settings
from sopflow.cli.app import app
from sopflow.cli.catalog import loaded_on_file
from sopflow.cli.output import Json, emit

if TYPE_CHECKING:
    from sopflow.schema import Trigger


def trigger_words(trigger: Trigger) -> str:
    """What starts the SOP's runs, in words: "new lead", "lead status qualified", "cron 0 9 * * 1"."""
    if trigger.cron is not None:
        return f"cron {trigger.cron}" + ("" if trigger.timezone == "UTC" else f" ({trigger.timezone})")
    return "new lead" if trigger.event == "new_lead" else f"lead status {trigger.status}"


@app.command()
def sops(as_json: Json = False) -> None:
    """List every valid SOP on file by id: version, trigger, owners, next review, review status and runs by state.

    An SOP whose review waits for its owner shows "review open"; `sopflow review` or the review run's form in the
    Prefect UI decides it.
    """
    from sopflow.store import reviews
    from sopflow.store.db import transaction
    from sopflow.store.history import run_counts_by_sop

    on_file = loaded_on_file()
    with transaction() as session:
        counts = run_counts_by_sop(session)
        rows = []
        for sop_id, loaded in sorted(on_file.items()):
            sop, due, waiting = loaded.sop, reviews.next_due(session, loaded), reviews.open_review(session, sop_id)
            rows.append({
                "sop": sop_id, "name": sop.name, "version": sop.version, "content_hash": loaded.content_hash,
                "trigger": trigger_words(sop.trigger), "owner": sop.owner, "review_owner": sop.review.owner,
                "next_review": due.isoformat() if due else None,
                "review_status": reviews.sop_status(session, sop_id),
                "review_run_id": waiting.flow_run_id if waiting else None, **counts[sop_id],
            })
    columns = [("SOP", lambda r: r["sop"]), ("Version", lambda r: f"v{r['version']}"),
               ("Trigger", lambda r: r["trigger"]), ("Owner", lambda r: r["owner"]),
               ("Next review", lambda r: r["next_review"]), ("Review status", lambda r: r["review_status"] + (", review open" if r["review_run_id"] else "")),
               ("Waiting", lambda r: r["waiting"]), ("Running", lambda r: r["running"]),
               ("Completed", lambda r: r["completed"]), ("Failed", lambda r: r["failed"])]
    emit(as_json, rows, columns, f"no valid SOP files in {settings.sop_dir()}; `sopflow validate` says why")
