"""The figures an SOP review looks at, from the store, and the same as a Markdown review packet.

Every duration is in seconds. Percentiles use the nearest-rank method throughout: the p-th percentile of
n sorted values is the value at rank ceil(p/100 * n) (1-based), so it is always a value that occurred;
the median is the 50th percentile, which for an even count is the lower of the two middle values.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from sopflow.forms import shown
from sopflow.loader import LoadedSop
from sopflow.markdown import cell as _cell
from sopflow.markdown import table as _table
from sopflow.store.feedback import feedback_for
from sopflow.store.models import Approval, Lead, SopRun, StepRecord

AUTOMATION_MIN_ANSWERS = 5  # accepted answers an approval step needs before it can be judged automatable
AUTOMATION_SHARE = 0.9  # share of those that must be "approve" with empty notes


def percentile(values: Sequence[float], p: float) -> float | None:
    """The nearest-rank `p`-th percentile of `values` (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]


def _stats(values: Sequence[float]) -> dict[str, float | None]:
    return {"median_seconds": percentile(values, 50), "p90_seconds": percentile(values, 90)}


def _since(query: Select, since: datetime | None) -> Select:
    return query if since is None else query.where(SopRun.created_at >= since)


def packet(session: Session, loaded_sop: LoadedSop, since: datetime | None = None) -> dict[str, Any]:
    """The review figures of `loaded_sop` over its runs created at or after `since` (all runs when None).

    Keys: sop, since, objective, progress (run counts by state and outcome, rejections per step, the
    leads' statuses), steps (per step, in the SOP's order: completed count, skips, duration median and
    p90; for approvals the asks and their waiting times asked→answered), waits_longest (steps by median
    wait, longest first: an approval's waiting time, any other step's duration), automation_candidates
    and feedback (what people said about the SOP since, oldest first). Plain JSON data throughout.
    """
    sop = loaded_sop.sop
    runs = list(session.scalars(_since(select(SopRun).where(SopRun.sop_id == sop.id), since)))
    records = list(session.scalars(_since(
        select(StepRecord).join(SopRun, SopRun.id == StepRecord.sop_run_id).where(SopRun.sop_id == sop.id), since)))
    asks = list(session.scalars(_since(
        select(Approval).join(SopRun, SopRun.id == Approval.sop_run_id).where(SopRun.sop_id == sop.id), since)))
    statuses = session.execute(_since(
        select(Lead.status, func.count()).join(SopRun, SopRun.lead_id == Lead.id).where(SopRun.sop_id == sop.id),
        since).group_by(Lead.status))
    steps = _steps(loaded_sop, records, asks)
    waits = [{"step_id": s["step_id"], "median_seconds": s["wait_median_seconds"]}
             for s in steps if s["wait_median_seconds"] is not None]
    return {
        "sop": {"id": sop.id, "name": sop.name, "version": sop.version, "content_hash": loaded_sop.content_hash},
        "since": since.isoformat() if since else None,
        "objective": {"statement": sop.objective.statement, "metric": sop.objective.metric,
                      "baseline": sop.objective.baseline, "target": sop.objective.target,
                      "deadline": sop.objective.deadline.isoformat()},
        "progress": {**_progress(runs), "lead_statuses": dict(sorted(statuses.tuples().all()))},
        "steps": steps,
        "waits_longest": sorted(waits, key=lambda w: (-w["median_seconds"], w["step_id"])),
        "automation_candidates": _automation_candidates(asks),
        "feedback": _feedback(session, sop.id, since),
    }


def _progress(runs: Sequence[SopRun]) -> dict[str, Any]:
    """How many runs there are in each state, and how the finished ones ended."""
    states = Counter(run.state for run in runs)
    outcomes = Counter(run.outcome for run in runs if run.outcome)
    rejected_at = Counter(o.removeprefix("rejected at ") for o in outcomes.elements() if o.startswith("rejected at "))
    failed_at = Counter(o.removeprefix("failed at ").split(":")[0] for o in outcomes.elements()
                        if o.startswith("failed at "))
    return {
        "runs": len(runs),
        "started": sum(1 for run in runs if run.state not in ("pending", "cancelled")),
        "completed": outcomes["completed"],
        "rejected": sum(rejected_at.values()),
        "failed": states["failed"],
        "waiting": states["waiting"],
        "running": states["running"],
        "pending": states["pending"],
        "cancelled": states["cancelled"],
        "rejected_at": dict(sorted(rejected_at.items())),
        "failed_at": dict(sorted(failed_at.items())),
        "outcomes": dict(sorted(outcomes.items())),
    }


def _seconds(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds()


def _steps(loaded_sop: LoadedSop, records: Sequence[StepRecord], asks: Sequence[Approval]) -> list[dict[str, Any]]:
    """Per step id, the SOP's steps first in their order, then any only older versions had."""
    kinds = {step.id: step.kind for step in loaded_sop.sop.steps}
    durations: dict[str, list[float]] = defaultdict(list)
    skipped: Counter[str] = Counter()
    for record in records:
        kinds.setdefault(record.step_id, record.kind)
        if record.status == "skipped":
            skipped[record.step_id] += 1
        else:
            durations[record.step_id].append(_seconds(record.started_at, record.ended_at))
    waits: dict[str, list[float]] = defaultdict(list)
    open_asks: Counter[str] = Counter()
    for ask in asks:
        kinds.setdefault(ask.step_id, "approval")
        if ask.answered_at is None:
            open_asks[ask.step_id] += 1
        else:
            waits[ask.step_id].append(_seconds(ask.asked_at, ask.answered_at))
    steps = []
    for step_id, kind in kinds.items():
        row: dict[str, Any] = {"step_id": step_id, "kind": kind, "count": len(durations[step_id]),
                               "skipped": skipped[step_id], **_stats(durations[step_id])}
        if kind == "approval":
            wait = _stats(waits[step_id])
            row.update(asks=len(waits[step_id]) + open_asks[step_id], open_asks=open_asks[step_id],
                       wait_median_seconds=wait["median_seconds"], wait_p90_seconds=wait["p90_seconds"])
        else:
            row.update(wait_median_seconds=row["median_seconds"], wait_p90_seconds=row["p90_seconds"])
        steps.append(row)
    return steps


def _automation_candidates(asks: Sequence[Approval]) -> list[dict[str, Any]]:
    """Approval steps with at least AUTOMATION_MIN_ANSWERS accepted answers, AUTOMATION_SHARE of them or more
    approvals with empty notes: a person signs them off without a word, so a rule might."""
    accepted: dict[str, list[Approval]] = defaultdict(list)
    for ask in asks:
        if ask.accepted:
            accepted[ask.step_id].append(ask)
    candidates = []
    for step_id, answers in sorted(accepted.items()):
        plain = sum(1 for a in answers if a.decision == "approve" and not (a.notes or "").strip())
        if len(answers) >= AUTOMATION_MIN_ANSWERS and plain >= AUTOMATION_SHARE * len(answers):
            candidates.append({"step_id": step_id, "accepted": len(answers), "approved_without_notes": plain,
                               "share": plain / len(answers)})
    return candidates


def _feedback(session: Session, sop_id: str, since: datetime | None) -> list[dict[str, Any]]:
    """The SOP's feedback given at or after `since`, oldest first, as plain data."""
    return [{"text": item.text, "step_id": item.step_id, "given_by": item.given_by, "version": item.sop_version,
             "source": item.source, "given_at": item.created_at.isoformat()}
            for item in feedback_for(session, sop_id, since)]


# -- Markdown -------------------------------------------------------------------------------------------------


def human(seconds: float | None) -> str:
    """A duration for people: `45s`, `12m`, `3h 5m`, `2d 4h`; `-` when there is none."""
    if seconds is None:
        return "-"
    whole = round(seconds)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    for big, big_unit, small, small_unit in ((days, "d", hours, "h"), (hours, "h", minutes, "m"),
                                             (minutes, "m", secs, "s")):
        if big:
            return f"{big}{big_unit}" + (f" {small}{small_unit}" if small else "")
    return f"{secs}s"


def _feedback_text(item: Mapping[str, Any]) -> str:
    """A feedback item's words, then who gave it, about which step and version."""
    about = [item["step_id"] or "the whole SOP", f"v{item['version']}"]
    return f"{item['text']} ({', '.join(filter(None, [item['given_by'], *about]))})"


def packet_markdown(packet: Mapping[str, Any]) -> str:
    """`packet` as a Markdown review packet (tables), for a Prefect artifact or a resume form's description."""
    sop, objective, progress = packet["sop"], packet["objective"], packet["progress"]
    lines = [f"## Review of {sop['name']} ({sop['id']}, version {sop['version']})", ""]
    lines += [f"Runs created since {packet['since']}." if packet["since"] else "All runs so far.", ""]
    lines += ["### Objective", ""] + _table(["Statement", "Metric", "Baseline", "Target", "Deadline"], [[
        objective["statement"], objective["metric"], shown(objective["baseline"]), shown(objective["target"]),
        objective["deadline"]]])
    lines += ["### Progress", ""] + _table(
        ["Runs", "Started", "Completed", "Rejected", "Failed", "Waiting", "Running", "Pending"],
        [[progress[k] for k in ("runs", "started", "completed", "rejected", "failed", "waiting", "running",
                                "pending")]])
    if progress["rejected_at"]:
        lines += ["Rejected at:", ""] + _table(["Step", "Runs"], list(progress["rejected_at"].items()))
    if progress["failed_at"]:
        lines += ["Failed at:", ""] + _table(["Step", "Runs"], list(progress["failed_at"].items()))
    if progress["lead_statuses"]:
        lines += ["Leads by status:", ""] + _table(["Status", "Leads"], list(progress["lead_statuses"].items()))
    lines += ["### Steps", ""] + _table(
        ["Step", "Kind", "Done", "Skipped", "Median", "p90", "Median wait", "p90 wait"],
        [[s["step_id"], s["kind"], s["count"], s["skipped"], human(s["median_seconds"]), human(s["p90_seconds"]),
          human(s["wait_median_seconds"]), human(s["wait_p90_seconds"])] for s in packet["steps"]])
    lines += ["Durations are nearest-rank percentiles; an approval's wait runs from ask to answer.", ""]
    lines += ["### Where runs wait longest", ""]
    lines += [f"{i}. {w['step_id']}: median {human(w['median_seconds'])}"
              for i, w in enumerate(packet["waits_longest"], 1)] or ["No step has finished yet."]
    lines += ["", "### Automation candidates", ""]
    if packet["automation_candidates"]:
        lines += _table(["Step", "Accepted answers", "Approved without notes", "Share"], [
            [c["step_id"], c["accepted"], c["approved_without_notes"], f"{c['share']:.0%}"]
            for c in packet["automation_candidates"]])
    else:
        lines += [f"None: no approval step has {AUTOMATION_MIN_ANSWERS}+ answers, "
                  f"{AUTOMATION_SHARE:.0%} of them approved without notes.", ""]
    lines += ["### Feedback", ""]
    lines += [f"- {_cell(_feedback_text(item))}" for item in packet["feedback"]] or ["No feedback recorded."]
    return "\n".join(lines) + "\n"
