"""KPIs from a known history, on SQLite and PostgreSQL: each measure kind's value per period, the on-track rule
on both sides of its line (lower is better too, a count judged pro rata, past the deadline), and `sopflow report`."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date, datetime, time, timedelta, timezone

import pytest
from pydantic import TypeAdapter

from sopflow.kpi import kpi, period_of, periods
from sopflow.leads import LeadIn
from sopflow.loader import LoadedSop, load_sop
from sopflow.schema import Measure
from sopflow.settings import PROJECT_ROOT
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import SopRun
from tests.sop_samples import MINIMAL
from tests.unit.test_cli import cli, cli_json
from tests.unit.test_versions import sop_dir  # noqa: F401  (the fixture: seed SOPs copied, the store configured)

UTC = timezone.utc
TODAY = date(2026, 11, 20)  # a Friday, in 2026-W47; 20 of November's 30 days are gone (today included)
START = datetime(2026, 10, 1, 8, tzinfo=UTC)  # each on-track test's first run: the objective starts 2026-10-01
DEADLINE = date(2027, 1, 9)  # 100 days after the start: on TODAY (day 50) half the time is gone
SOPS = {path.stem: load_sop(path) for path in (PROJECT_ROOT / "sop_definitions").glob("*.yaml")}
MONTHS = ["2025-12", "2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06", "2026-07", "2026-08",
          "2026-09", "2026-10", "2026-11"]


def measured(sop_id: str, measure: dict, **objective) -> LoadedSop:
    """Seed SOP `sop_id` with `measure` and, when given, an objective baseline, target and deadline of its own."""
    loaded = SOPS[sop_id]
    changes = {"measure": TypeAdapter(Measure).validate_python(measure), **objective}
    return replace(loaded, sop=loaded.sop.model_copy(update={
        "objective": loaded.sop.objective.model_copy(update=changes)}))


def at(day: date, hour: float = 12) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC) + timedelta(hours=hour)


def nov(day: int, hour: float = 12) -> datetime:
    return at(date(2026, 11, day), hour)


def new_lead(session) -> str:
    return add_lead(session, LeadIn(email=f"{uuid.uuid4().hex[:8]}@example.com"))[0].id


def new_run(session, sop_id: str, lead_id: str | None = None, created: datetime = START,
            started: datetime | None = None, ended: datetime | None = None, outcome: str | None = None) -> SopRun:
    run = runs.ensure_run(session, sop_id, lead_id or new_lead(session))
    run.created_at, run.started_at, run.ended_at, run.outcome = created, started or created, ended, outcome
    session.flush()
    return run


def record(session, run: SopRun, step_id: str, kind: str, ended: datetime, result: dict | None = None,
           status: str = "completed") -> None:
    runs.record_step(session, run.id, step_id, kind, status, result or {}, ended).ended_at = ended


def reach(session, lead_id: str, status: str, when: datetime, sop_id: str = "lead-qualification") -> None:
    """An update_lead step of `sop_id` set the lead's status to `status` at `when`."""
    run = new_run(session, sop_id, lead_id, created=when)
    record(session, run, "set_status", "update_lead", when, {"status": status})


def values(row: dict) -> dict[str, float | None]:
    return {point["period"]: point["value"] for point in row["trend"]}


def report(store_url: str, loaded: LoadedSop, today: date = TODAY) -> dict:
    with transaction(store_url) as session:
        return kpi(session, loaded, today)


def test_periods_are_iso_weeks_months_and_quarters():
    assert period_of("week", TODAY) == period_of("week", date(2026, 11, 16))  # Monday to Sunday
    assert (period_of("week", TODAY).label, period_of("week", TODAY).start) == ("2026-W47", date(2026, 11, 16))
    assert period_of("week", date(2027, 1, 1)).label == "2026-W53"  # ISO: the week of 2026-12-28
    assert period_of("month", TODAY).label == "2026-11"
    assert period_of("month", date(2026, 12, 31)).end == date(2027, 1, 1)
    quarter = period_of("quarter", TODAY)
    assert (quarter.label, quarter.start, quarter.end) == ("2026-Q4", date(2026, 10, 1), date(2027, 1, 1))
    assert [p.label for p in periods("month", TODAY)] == MONTHS
    assert [p.label for p in periods("quarter", TODAY)][:2] == ["2024-Q1", "2024-Q2"]


def seed_statuses(store_url: str) -> None:
    with transaction(store_url) as session:
        a, b, c, e, f, g, h, i, j = (new_lead(session) for _ in range(9))
        reach(session, a, "qualified", nov(3))
        reach(session, a, "qualified", nov(5), "presentation-demo")  # the same lead again: counted once
        reach(session, b, "qualified", nov(10))
        reach(session, c, "qualified", nov(19, 23.9))
        reach(session, e, "qualified", at(date(2026, 10, 31), 23.5))
        reach(session, f, "qualified", at(date(2026, 8, 15)))
        reach(session, g, "qualified", at(date(2026, 8, 16)))
        reach(session, h, "qualified", at(date(2025, 11, 30)))  # before the 12 months
        record(session, new_run(session, "lead-qualification", i), "mark_qualified", "update_lead", nov(12),
               {"owner": "Alex Kim"})  # already qualified: the status did not change
        reach(session, j, "nurture", nov(12))


def test_leads_reaching_status_counts_each_lead_once_a_period(store_url):
    seed_statuses(store_url)
    row = report(store_url, measured("lead-qualification", {"kind": "leads_reaching_status", "status": "qualified",
                                                            "per": "month"}))
    assert (row["sop"], row["metric"], row["unit"], row["period"], row["value"]) == (
        "lead-qualification", "qualified leads per quarter", "leads", "2026-11", 3)
    assert row["measure"] == {"kind": "leads_reaching_status", "status": "qualified", "per": "month"}
    assert row["trend"][0] == {"period": "2025-12", "start": "2025-12-01", "value": 0}
    assert values(row) == {**dict.fromkeys(MONTHS, 0), "2026-08": 2, "2026-10": 1, "2026-11": 3}

    by_quarter = report(store_url, SOPS["lead-qualification"])  # as the seed SOP measures it
    assert (by_quarter["period"], by_quarter["value"], len(by_quarter["trend"])) == ("2026-Q4", 4, 12)
    assert [p["value"] for p in by_quarter["trend"][-5:]] == [1, 0, 0, 2, 4]  # 2025-Q4 .. 2026-Q4

    by_week = report(store_url, measured("lead-qualification", {"kind": "leads_reaching_status",
                                                                "status": "qualified", "per": "week"}))
    assert [(p["period"], p["start"], p["value"]) for p in by_week["trend"][-4:]] == [
        ("2026-W44", "2026-10-26", 1), ("2026-W45", "2026-11-02", 1), ("2026-W46", "2026-11-09", 1),
        ("2026-W47", "2026-11-16", 1)]


def test_conversion_is_the_percent_of_a_periods_leads_that_reached_the_status_later(store_url):
    with transaction(store_url) as session:
        a, b, c, d, e = (new_lead(session) for _ in range(5))
        reach(session, a, "opportunity", at(date(2026, 10, 5)), "presentation-demo")
        reach(session, a, "customer", at(date(2026, 10, 20)), "negotiation-closing")
        reach(session, b, "opportunity", at(date(2026, 10, 10)), "presentation-demo")
        reach(session, c, "customer", at(date(2026, 10, 1)), "negotiation-closing")  # before its opportunity
        reach(session, c, "opportunity", at(date(2026, 10, 15)), "presentation-demo")
        reach(session, d, "opportunity", nov(2), "presentation-demo")
        reach(session, d, "customer", nov(3), "negotiation-closing")
        reach(session, e, "opportunity", at(date(2026, 9, 30)), "presentation-demo")
        reach(session, e, "customer", nov(1), "negotiation-closing")  # converted two periods later
    row = report(store_url, measured("negotiation-closing", {"kind": "conversion", "from_status": "opportunity",
                                                             "to_status": "customer"}))  # per month by default
    assert (row["unit"], row["value"], row["baseline"], row["target"]) == ("%", 100.0, 22.0, 30.0)  # shares shown as %
    assert values(row) == {**dict.fromkeys(MONTHS), "2026-09": 100.0, "2026-10": pytest.approx(100 / 3),
                           "2026-11": 100.0}


def test_runs_completed_counts_this_sops_runs_that_ended_completed(store_url):
    with transaction(store_url) as session:
        for ended in (nov(2), nov(19), at(date(2026, 10, 10))):
            new_run(session, "lead-qualification", ended=ended, outcome="completed")
        new_run(session, "lead-qualification", ended=nov(5), outcome="rejected at manager_approval")
        new_run(session, "lead-qualification")  # still running
        new_run(session, "prospecting", ended=nov(7), outcome="completed")  # another SOP's
    row = report(store_url, measured("lead-qualification", {"kind": "runs_completed", "per": "month"}))
    assert (row["unit"], row["value"]) == ("runs", 2)
    assert values(row) == {**dict.fromkeys(MONTHS, 0), "2026-10": 1, "2026-11": 2}


def test_median_time_to_step_is_the_nearest_rank_median_in_hours(store_url):
    with transaction(store_url) as session:
        for hours in (1, 2, 10, 30):  # the median of an even count is the lower middle value
            started = nov(2)
            record(session, new_run(session, "lead-qualification", started=started), "manager_approval", "approval",
                   started + timedelta(hours=hours))
        october = new_run(session, "lead-qualification", started=at(date(2026, 10, 3)))
        record(session, october, "manager_approval", "approval", at(date(2026, 10, 3), 17))
        record(session, october, "rep_qualification", "approval", nov(1))  # another step
        skipped = new_run(session, "lead-qualification", started=nov(4))
        record(session, skipped, "manager_approval", "approval", nov(4, 12.5), status="skipped")
    row = report(store_url, measured("lead-qualification", {"kind": "median_time_to_step", "step": "manager_approval",
                                                            "per": "month"}))
    assert (row["unit"], row["value"]) == ("hours", 2.0)
    assert values(row) == {**dict.fromkeys(MONTHS), "2026-10": 5.0, "2026-11": 2.0}


def ask(session, run: SopRun, asked: datetime, due_by: datetime | None, answered: datetime | None,
        accepted: bool = True) -> None:
    step = "operations_acknowledged"
    open_ask = approvals.open_ask(session, run.id, step, "operations", "?", due_by)
    open_ask.asked_at = asked
    if answered is not None:
        approvals.record_answer(session, open_ask.id, "approve", "Omar Haddad", "", None if accepted else "off roster")
        open_ask.answered_at = answered
        if accepted:
            record(session, run, step, "approval", answered, {"decision": "approve"})
    session.flush()


def test_sla_adherence_measures_answers_against_the_first_asks_due_time(store_url):
    with transaction(store_url) as session:
        ask(session, new_run(session, "order-processing"), nov(2, 9), nov(3, 9), nov(2, 20))  # in time
        late = new_run(session, "order-processing")
        ask(session, late, nov(4, 9), nov(5, 9), nov(4, 11), accepted=False)  # refused: asked again
        ask(session, late, nov(4, 11), nov(6, 9), nov(5, 15))  # in time for this ask, late for the first
        ask(session, new_run(session, "order-processing"), nov(6, 9), nov(7, 9), nov(7, 9))  # right at its due time
        ask(session, new_run(session, "order-processing"), nov(8, 9), None, nov(8, 10))  # no due time: left out
        ask(session, new_run(session, "order-processing"), at(date(2026, 10, 10), 9), at(date(2026, 10, 11), 9),
            at(date(2026, 10, 12)))
        ask(session, new_run(session, "order-processing"), nov(9, 9), nov(10, 9), None)  # not answered yet
    row = report(store_url, SOPS["order-processing"])
    assert row["measure"] == {"kind": "sla_adherence", "step": "operations_acknowledged", "per": "month"}
    assert (row["unit"], row["value"], row["baseline"], row["target"]) == ("%", pytest.approx(200 / 3), 70.0, 98.0)
    assert values(row) == {**dict.fromkeys(MONTHS), "2026-10": 0.0, "2026-11": pytest.approx(200 / 3)}


def satisfaction(session, scores: list, day: int = 10, month: int = 11, year: int = 2026) -> None:
    for score in scores:
        result = {"decision": "approve"} if score is None else {"decision": "approve", "satisfaction": score}
        record(session, new_run(session, "post-sale-follow-up"), "satisfaction_check", "approval",
               at(date(year, month, day)), result)


def test_input_average_averages_the_recorded_input(store_url):
    with transaction(store_url) as session:
        new_run(session, "post-sale-follow-up", created=START)
        satisfaction(session, [5, 4, 3, None])  # no answer recorded: left out
        satisfaction(session, [2], month=10)
        record(session, new_run(session, "post-sale-follow-up"), "satisfaction_check", "approval", nov(11),
               {"satisfaction": 1}, status="skipped")
    row = report(store_url, SOPS["post-sale-follow-up"])
    assert (row["unit"], row["value"], row["start"]) == ("Satisfaction (1-5)", 4.0, "2026-10-01")
    assert values(row) == {**dict.fromkeys(MONTHS), "2026-10": 2.0, "2026-11": 4.0}


# -- on track: half the time from START to DEADLINE is gone on TODAY --------------------------------------------

HALFWAY = {"baseline": 4.0, "target": 5.0, "deadline": DEADLINE}  # needs 4.5 by TODAY


@pytest.mark.parametrize(("scores", "on_track", "verdict"), [
    ([4, 5], True, "on track: 4.5 Satisfaction (1-5) in 2026-11; on track needs 4.5 Satisfaction (1-5) by now "
                   "(50% of the time to 2027-01-09 gone)"),
    ([4, 5, 4, 5, 4], False, "behind: 4.4 Satisfaction (1-5) in 2026-11; on track needs 4.5 Satisfaction (1-5) by now"),
], ids=["on-the-line", "just-below"])
def test_on_track_needs_the_share_of_the_way_that_the_time_gone_covers(store_url, scores, on_track, verdict):
    with transaction(store_url) as session:
        new_run(session, "post-sale-follow-up", created=START)
        satisfaction(session, scores)
    row = report(store_url, measured("post-sale-follow-up", SOPS["post-sale-follow-up"].sop.objective.measure
                                     .model_dump(), **HALFWAY))
    assert (row["start"], row["required"], row["on_track"]) == ("2026-10-01", 4.5, on_track)
    assert row["verdict"].startswith(verdict)


@pytest.mark.parametrize(("hours", "on_track"), [(36, True), (37, False)])
def test_a_target_below_the_baseline_means_lower_is_better(store_url, hours, on_track):
    with transaction(store_url) as session:
        record(session, new_run(session, "lead-qualification", started=nov(2)), "manager_approval", "approval",
               nov(2) + timedelta(hours=hours))
    row = report(store_url, measured("lead-qualification", {"kind": "median_time_to_step", "step": "manager_approval",
                                                            "per": "month"}, baseline=48.0, target=24.0,
                                     deadline=DEADLINE))
    assert (row["value"], row["required"], row["on_track"]) == (hours, 36.0, on_track)
    assert row["verdict"].startswith("on track" if on_track else "behind")


@pytest.mark.parametrize(("completed", "on_track"), [(10, True), (9, False)])
def test_a_count_in_a_period_under_way_is_judged_pro_rata(store_url, completed, on_track):
    with transaction(store_url) as session:
        for _ in range(completed):
            new_run(session, "lead-qualification", ended=nov(5), outcome="completed")
    row = report(store_url, measured("lead-qualification", {"kind": "runs_completed", "per": "month"},
                                     baseline=10.0, target=20.0, deadline=DEADLINE))
    # needs 15 by now; 20 of November's 30 days are gone, so 10 runs are 15 for the whole month at this pace
    assert (row["value"], row["required"], row["on_track"]) == (completed, 15.0, on_track)
    assert f"{completed * 1.5:g} runs for the whole period at this pace" in row["verdict"]


@pytest.mark.parametrize(("score", "verdict"), [(5, "target met"), (4, "target missed")])
def test_past_the_deadline_on_track_means_the_target_is_met(store_url, score, verdict):
    with transaction(store_url) as session:
        new_run(session, "post-sale-follow-up", created=START)
        satisfaction(session, [score], day=12, month=1, year=2027)
    row = report(store_url, measured("post-sale-follow-up", SOPS["post-sale-follow-up"].sop.objective.measure
                                     .model_dump(), **HALFWAY), today=DEADLINE + timedelta(days=10))
    assert (row["period"], row["required"], row["on_track"]) == ("2027-01", 5.0, score == 5)
    assert row["verdict"].startswith(f"{verdict}: {score} Satisfaction (1-5) in 2027-01; the target is 5")


def test_no_runs_no_data_and_no_measure_are_not_judged(store_url):
    with transaction(store_url) as session:  # another SOP's step: the objective starts with its own SOP's runs
        reach(session, new_lead(session), "qualified", nov(3), "presentation-demo")
    row = report(store_url, SOPS["lead-qualification"])
    assert (row["value"], row["start"], row["on_track"]) == (1, None, None)
    assert row["verdict"] == "not judged: lead-qualification has no runs yet, so its objective has not started"

    with transaction(store_url) as session:
        new_run(session, "order-processing", created=START)
    row = report(store_url, SOPS["order-processing"])
    assert (row["value"], row["start"], row["on_track"]) == (None, "2026-10-01", None)
    assert row["verdict"] == "not judged: no data in 2026-11 yet"

    unmeasured = replace(SOPS["order-processing"], sop=SOPS["order-processing"].sop.model_copy(update={
        "objective": SOPS["order-processing"].sop.objective.model_copy(update={"measure": None})}))
    row = report(store_url, unmeasured)
    assert (row["measure"], row["unit"], row["value"], row["trend"], row["on_track"]) == (None, None, None, [], None)
    assert (row["baseline"], row["target"], row["deadline"]) == (0.7, 0.98, "2027-03-31")
    assert row["verdict"].startswith("no measure: add objective.measure")


# -- sopflow report -------------------------------------------------------------------------------------------

def test_report_prints_each_sops_kpi_as_a_table_and_as_json(sop_dir, capsys):
    (sop_dir / "minimal.yaml").write_text(MINIMAL.replace(
        ", measure: {kind: runs_completed, per: month}", ""))
    now = datetime.now(UTC)
    with transaction() as session:
        for _ in range(3):
            reach(session, new_lead(session), "qualified", now)
    rows = {row["sop"]: row for row in cli_json(capsys, "report")}
    assert list(rows) == ["lead-qualification", "minimal", "negotiation-closing", "order-processing",
                          "post-sale-follow-up", "presentation-demo", "prospecting"]
    qualify = rows["lead-qualification"]
    assert (qualify["value"], qualify["unit"], qualify["baseline"], qualify["target"]) == (3, "leads", 120, 144)
    assert [p["value"] for p in qualify["trend"]] == [0] * 11 + [3] and qualify["start"] == now.date().isoformat()
    assert isinstance(qualify["on_track"], bool) and qualify["verdict"].startswith(("on track", "behind", "target"))
    assert (rows["minimal"]["measure"], rows["minimal"]["on_track"]) == (None, None)
    assert (rows["order-processing"]["baseline"], rows["order-processing"]["value"]) == (70.0, None)
    assert {sop_id: row["measure"]["kind"] for sop_id, row in rows.items() if row["measure"]} == {
        "lead-qualification": "leads_reaching_status", "negotiation-closing": "conversion",
        "order-processing": "sla_adherence", "post-sale-follow-up": "input_average",
        "presentation-demo": "sla_adherence", "prospecting": "leads_reaching_status"}

    code, out, err = cli(capsys, "report")
    assert (code, err) == (0, "")
    lines = {line.split()[0]: line.split() for line in out.splitlines()[2:]}
    assert out.splitlines()[0].split() == ["SOP", "Metric", "Value", "Baseline", "Target", "Deadline", "On", "track",
                                           "Adherence", "Last", "6", "periods"]
    assert lines["lead-qualification"][:10] == ["lead-qualification", "qualified", "leads", "per", "quarter", "3",
                                                "leads", "120", "144", "2027-03-31"]
    assert lines["lead-qualification"][-6:] == ["0", "0", "0", "0", "0", "3"]
    assert lines["order-processing"][-13:] == ["-", "70%", "98%", "2027-03-31", "-", "not", "audited", "-", "-", "-",
                                               "-", "-", "-"]
    assert "no measure" in " ".join(lines["minimal"])

    assert [row["sop"] for row in cli_json(capsys, "report", "--sop", "prospecting")] == ["prospecting"]


def test_report_of_an_unknown_sop_suggests_the_closest(sop_dir, capsys):
    code, out, err = cli(capsys, "report", "--sop", "lead-qualificaton")
    assert (code, out) == (2, "")
    assert err == ("sopflow report: no SOP is called 'lead-qualificaton' (did you mean 'lead-qualification'?); "
                   "`sopflow sops` lists the SOPs\n")
