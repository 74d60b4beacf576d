"""KPIs: an SOP's objective measured from the store, per period, against its baseline, target and deadline.

The objective's `measure` (sopflow.schema) says what is counted; `kpi` computes it for the current period
(the week, month or quarter holding `today`, in UTC) and for each of the 12 periods up to it, with a few
set-based SELECTs per KPI. Periods are ISO weeks from Monday (`2026-W47`), months (`2026-11`) and
quarters (`2026-Q4`). Percent measures (conversion, sla_adherence) are computed and reported in percent;
their objective states baseline and target as shares (0.3), which the report shows as percents (30).

On track. The objective starts on the date of the SOP's first run (its `created_at`) and is due on its
`deadline`. Let `elapsed` be the share of that time gone by today: (today - start) / (deadline - start),
held between 0 and 1 (1 on and after the deadline). The level required now is

    required = baseline + elapsed * (target - baseline)

and the KPI is on track when the current period's value is at least `required`, or at most it when the
target is below the baseline (lower is better). So on the start date the baseline suffices, halfway to
the deadline half of the way from baseline to target must be covered, and past the deadline on track means
the target is met. A count (leads_reaching_status, runs_completed) grows through its period, so while the
period is under way it is judged pro rata: the count so far times the period's days over the days gone by
(today included). On track is None (not judged) when the SOP has no runs yet or the period has no value.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

from sqlalchemy import Select, and_, func, select
from sqlalchemy.orm import Session, aliased

from sopflow.forms import shown
from sopflow.loader import LoadedSop
from sopflow.review_packet import percentile
from sopflow.schema import (PERCENT_KINDS, ApprovalStep, Conversion, InputAverage, LeadsReachingStatus, Measure,
                            MedianTimeToStep, RunsCompleted, SlaAdherence)
from sopflow.store.models import Approval, SopRun, StepRecord

PERIODS = 12  # the trend's length, current period included
COUNT_KINDS = ("leads_reaching_status", "runs_completed")  # an empty period counts 0; others have no value
UNITS = {"leads_reaching_status": "leads", "conversion": "%", "runs_completed": "runs",
         "median_time_to_step": "hours", "sla_adherence": "%"}  # input_average: the input's label


@dataclass(frozen=True)
class Period:
    """One week, month or quarter: its label and its days, `start` included, `end` not."""

    label: str
    start: date
    end: date

    def holds(self, moment: datetime) -> bool:
        return self.start <= moment.astimezone(timezone.utc).date() < self.end


def period_of(per: str, day: date) -> Period:
    """The week (ISO, from Monday), month or quarter that holds `day`."""
    if per == "week":
        start = day - timedelta(days=day.weekday())
        year, week, _ = start.isocalendar()
        return Period(f"{year}-W{week:02d}", start, start + timedelta(days=7))
    months = 3 if per == "quarter" else 1
    first = (day.month - 1) // months * months + 1
    start = date(day.year, first, 1)
    end = date(day.year + (first + months > 12), (first + months - 1) % 12 + 1, 1)
    label = f"{day.year}-Q{(first - 1) // 3 + 1}" if per == "quarter" else f"{day.year}-{day.month:02d}"
    return Period(label, start, end)


def periods(per: str, today: date, count: int = PERIODS) -> list[Period]:
    """The `count` periods up to the one holding `today`, oldest first."""
    found = [period_of(per, today)]
    while len(found) < count:
        found.insert(0, period_of(per, found[0].start - timedelta(days=1)))
    return found


def _utc(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=timezone.utc)


def _within(query: Select, column: Any, window: list[Period]) -> Select:
    return query.where(column >= _utc(window[0].start), column < _utc(window[-1].end))


def _records(sop_id: str, step_id: str, *columns: Any) -> Select:
    """`columns` of the completed records of step `step_id` in runs of SOP `sop_id`."""
    return (select(*columns).join(SopRun, SopRun.id == StepRecord.sop_run_id)
            .where(SopRun.sop_id == sop_id, StepRecord.step_id == step_id, StepRecord.status == "completed"))


def _status_reached(statuses: Iterable[str]) -> Select:
    """(lead id, status, when) of every completed update_lead step, of any SOP, that set one of `statuses`."""
    status = StepRecord.result["status"].as_string()
    return (select(SopRun.lead_id, status, StepRecord.ended_at).join(SopRun, SopRun.id == StepRecord.sop_run_id)
            .where(StepRecord.kind == "update_lead", StepRecord.status == "completed", status.in_(list(statuses))))


def _index(window: list[Period], moment: datetime) -> int | None:
    """Which period of `window` holds `moment`; None when none does."""
    return next((i for i, period in enumerate(window) if period.holds(moment)), None)


def _bucket(window: list[Period], rows: Iterable[tuple[datetime, Any]]) -> list[list[Any]]:
    """Each (moment, value) row's value in the list of the period holding its moment."""
    found: list[list[Any]] = [[] for _ in window]
    for moment, value in rows:
        index = _index(window, moment)
        if index is not None:
            found[index].append(value)
    return found


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _share(hits: list[bool]) -> float | None:
    return 100 * sum(hits) / len(hits) if hits else None


def _conversion(session: Session, measure: Conversion, window: list[Period]) -> list[float | None]:
    """Per period: of the leads that reached from_status in it, the percent that reached to_status afterwards."""
    rows = session.execute(_within(_status_reached([measure.from_status, measure.to_status]),
                                   StepRecord.ended_at, window)).all()
    converted_at: dict[str, list[datetime]] = defaultdict(list)
    reached: list[dict[str, datetime]] = [{} for _ in window]  # per period: each lead's first reach in it
    for lead_id, status, moment in sorted(rows, key=lambda row: row[2]):
        index = _index(window, moment)
        if status == measure.to_status:
            converted_at[lead_id].append(moment)
        elif index is not None:
            reached[index].setdefault(lead_id, moment)
    return [_share([any(when > moment for when in converted_at[lead_id]) for lead_id, moment in cohort.items()])
            for cohort in reached]


def _sla_adherence(session: Session, sop_id: str, measure: SlaAdherence, window: list[Period]) -> list[float | None]:
    """Per period: the percent of the runs whose step completed in it that were answered by the first ask's due_by.

    Asks are numbered from 0 (sopflow.store.approvals.open_ask), and every ask of a run keeps the first one's
    due time (tasks.approval.ask). A run asked without a due time (a version without due_within) is left out.
    """
    first, answer = aliased(Approval), aliased(Approval)
    query = _records(sop_id, measure.step, StepRecord.ended_at, first.due_by, answer.answered_at).outerjoin(
        first, and_(first.sop_run_id == StepRecord.sop_run_id, first.step_id == StepRecord.step_id, first.ask == 0),
    ).outerjoin(answer, and_(answer.sop_run_id == StepRecord.sop_run_id, answer.step_id == StepRecord.step_id,
                             answer.accepted.is_(True)))
    rows = session.execute(_within(query, StepRecord.ended_at, window)).all()
    return [_share(hits) for hits in _bucket(window, (
        (ended, answered is not None and answered <= due) for ended, due, answered in rows if due is not None))]


def _values(session: Session, sop_id: str, measure: Measure, window: list[Period]) -> list[float | None]:
    """The measure's value in each period of `window`."""
    if isinstance(measure, LeadsReachingStatus):
        rows = session.execute(_within(_status_reached([measure.status]), StepRecord.ended_at, window)).all()
        return [len(set(leads)) for leads in _bucket(window, ((moment, lead) for lead, _, moment in rows))]
    if isinstance(measure, Conversion):
        return _conversion(session, measure, window)
    if isinstance(measure, RunsCompleted):
        query = select(SopRun.ended_at, SopRun.id).where(SopRun.sop_id == sop_id, SopRun.outcome == "completed")
        return [len(ids) for ids in _bucket(window, session.execute(_within(query, SopRun.ended_at, window)).all())]
    if isinstance(measure, MedianTimeToStep):
        query = _records(sop_id, measure.step, StepRecord.ended_at, SopRun.started_at).where(
            SopRun.started_at.is_not(None))
        rows = session.execute(_within(query, StepRecord.ended_at, window)).all()
        hours = _bucket(window, ((ended, (ended - started).total_seconds() / 3600) for ended, started in rows))
        return [percentile(values, 50) for values in hours]
    if isinstance(measure, SlaAdherence):
        return _sla_adherence(session, sop_id, measure, window)
    assert isinstance(measure, InputAverage)
    rows = session.execute(_within(_records(sop_id, measure.step, StepRecord.ended_at, StepRecord.result),
                                   StepRecord.ended_at, window)).all()
    recorded = ((ended, result.get(measure.input)) for ended, result in rows)
    return [_mean(values) for values in _bucket(window, (
        (ended, float(value)) for ended, value in recorded
        if isinstance(value, (int, float)) and not isinstance(value, bool)))]


def _unit(loaded_sop: LoadedSop, measure: Measure) -> str:
    if isinstance(measure, InputAverage):
        step = next(s for s in loaded_sop.sop.steps if s.id == measure.step)
        assert isinstance(step, ApprovalStep)
        return step.inputs[measure.input].label
    return UNITS[measure.kind]


def amount(value: float | None, unit: str | None) -> str:
    """A KPI value as a person reads it: "130 leads", "45.5%", "3.2 hours"; "-" for none."""
    if value is None:
        return "-"
    number = shown(round(float(value), 1))
    return f"{number}%" if unit == "%" else f"{number} {unit}" if unit else number


def elapsed_share(start: date, deadline: date, today: date) -> float:
    """The share of the time from `start` to `deadline` gone by on `today`, between 0 and 1."""
    if today >= deadline or deadline <= start:
        return 1.0
    return max(0, (today - start).days) / (deadline - start).days


def judge(value: float, baseline: float, target: float, required: float) -> bool:
    """Whether `value` is at `required` or beyond it, towards `target` (below `baseline`: lower is better)."""
    return value <= required if target < baseline else value >= required


def _scaled(value: float, scale: int) -> float:
    return round(value * scale, 9)  # 0.55 * 100 is 55.00000000000001


def kpi(session: Session, loaded_sop: LoadedSop, today: date | None = None) -> dict[str, Any]:
    """The KPI of `loaded_sop`'s objective on `today` (default: today in UTC); see this module's docstring.

    Keys: sop, metric, measure (its fields; None without one), unit, period (the current one), value (in it;
    None when it has no data), baseline and target (in the unit: percents for a percent measure), deadline,
    start (the first run's date), trend (the last 12 periods, oldest first: period, start, value), required
    (the level on track needs now), on_track (None when not judged) and verdict (in words).
    """
    sop, today = loaded_sop.sop, today or datetime.now(timezone.utc).date()
    objective, measure = sop.objective, sop.objective.measure
    row: dict[str, Any] = {"sop": sop.id, "metric": objective.metric, "measure": None, "unit": None, "period": None,
                           "value": None, "baseline": objective.baseline, "target": objective.target,
                           "deadline": objective.deadline.isoformat(), "start": None, "trend": [],
                           "required": None, "on_track": None}
    if measure is None:
        return {**row, "verdict": "no measure: add objective.measure to the SOP for sopflow to compute this KPI"}
    scale = 100 if measure.kind in PERCENT_KINDS else 1
    window = periods(measure.per, today)
    values = _values(session, sop.id, measure, window)
    first_run = session.scalar(select(func.min(SopRun.created_at)).where(SopRun.sop_id == sop.id))
    row.update(measure=measure.model_dump(), unit=_unit(loaded_sop, measure), period=window[-1].label,
               value=values[-1], baseline=_scaled(objective.baseline, scale), target=_scaled(objective.target, scale),
               start=first_run.date().isoformat() if first_run else None,
               trend=[{"period": p.label, "start": p.start.isoformat(), "value": v} for p, v in zip(window, values)])
    return {**row, **_verdict(row, window[-1], today, measure.kind in COUNT_KINDS)}


def _verdict(row: dict[str, Any], period: Period, today: date, count: bool) -> dict[str, Any]:
    """required, on_track and verdict of a KPI `row` whose value, baseline, target and start are known."""
    value, unit, deadline = row["value"], row["unit"], date.fromisoformat(row["deadline"])
    if row["start"] is None:
        return {"verdict": f"not judged: {row['sop']} has no runs yet, so its objective has not started"}
    if value is None:
        return {"verdict": f"not judged: no data in {period.label} yet"}
    elapsed = elapsed_share(date.fromisoformat(row["start"]), deadline, today)
    required = row["baseline"] + elapsed * (row["target"] - row["baseline"])
    judged, projected = value, ""
    days_gone = (min(today, period.end - timedelta(days=1)) - period.start).days + 1
    if count and days_gone < (period.end - period.start).days:
        judged = value * (period.end - period.start).days / days_gone
        projected = f", {amount(judged, unit)} for the whole period at this pace"
    on_track = judge(judged, row["baseline"], row["target"], required)
    words = ("target met" if on_track else "target missed") if today >= deadline else (
        "on track" if on_track else "behind")
    need = (f"the target is {amount(row['target'], unit)} by {row['deadline']}" if today >= deadline else
            f"on track needs {amount(required, unit)} by now ({elapsed:.0%} of the time to {row['deadline']} gone)")
    return {"required": required, "on_track": on_track,
            "verdict": f"{words}: {amount(value, unit)} in {period.label}{projected}; {need}"}
