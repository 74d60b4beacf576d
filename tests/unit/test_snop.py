"""S&OP: the capacity file (valid, and each kind of mistake at its file:line), demand from a known pipeline on
SQLite and PostgreSQL (weighted by stage, by close month, runs without a close month listed, ended runs left out) in
one SELECT, the months over capacity, who may sign off, one plan per month under concurrent claims, `sopflow snop`."""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timezone
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from flows.snop import plan_month
from sopflow.capacity import EXAMPLE, CapacityPlan, LoadedCapacity, check_capacity, load_capacity, negotiation_sop
from sopflow.catalog import validate
from sopflow.errors import SopInvalid
from sopflow.forms import check_inputs
from sopflow.leads import LeadIn
from sopflow.schema import ApprovalStep
from sopflow.settings import PROJECT_ROOT
from sopflow.snop import month_of, months_from, parse_month, plan_figures, stage_weight
from sopflow.snop_report import chart, over_words, plan_markdown, sign_off_words, table_rows
from sopflow.store import runs
from sopflow.store import snop as plans
from sopflow.store.db import engine, transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import SnopPlan
from tasks.snop import SignOffForm, hold_plan, signer_problem
from tests.unit.test_cli import cli
from tests.unit.test_store import in_threads
from tests.unit.test_versions import sop_dir  # noqa: F401  (the fixture: seed SOPs copied, the store configured)

SOPS = PROJECT_ROOT / "sop_definitions"
NEGOTIATION = negotiation_sop(SOPS)
STEPS = [step.id for step in NEGOTIATION.sop.steps]  # deal_terms, discount_approval, contract_email, ...
T0 = datetime(2026, 12, 1, 6, tzinfo=timezone.utc)
CAPACITY = LoadedCapacity(CapacityPlan.model_validate({
    "unit": "hours", "demand": {"per_deal_value": {"value": 1000, "needs": 10}},
    "capacity": {"default": 100, "months": {"2027-02": 50}},
    "stage_weights": {"deal_terms": 0.5, "contract_email": 0.8},  # discount_approval: deal_terms' weight
    "horizon": 3, "sign_off": {"sales": ["Maria Lopez"], "operations": ["Omar Haddad", "Dana Reyes"]},
}), Path("capacity.yaml"), "c" * 64)


# -- the capacity file ------------------------------------------------------------------------------------------

def test_the_seed_and_documented_capacity_files_are_valid(tmp_path):
    seed = load_capacity(SOPS / "planning" / "capacity.yaml", NEGOTIATION).plan
    assert (seed.unit, seed.horizon, seed.sign_off.sales, seed.sign_off.operations) == (
        "hours", 6, ["Maria Lopez"], ["Omar Haddad"])
    assert set(seed.stage_weights) <= set(STEPS) and "deal_terms" in seed.stage_weights
    (tmp_path / "capacity.yaml").write_text(EXAMPLE)
    example = load_capacity(tmp_path / "capacity.yaml", NEGOTIATION).plan
    assert (example.capacity_of("2027-01"), example.capacity_of("2027-02")) == (400, 320)


def test_the_catalogue_does_not_read_it_as_an_sop_and_validate_checks_it():
    loaded, errors = validate([SOPS])
    assert errors == [] and "capacity" not in {item.path.stem for item in loaded}
    assert check_capacity([SOPS], loaded) == []


HEAD = "unit: hours\ndemand:\n  per_deal_value: {value: 1000, needs: 8}\ncapacity:\n  default: 320\n"
TAIL = "stage_weights:\n  deal_terms: 0.4\nsign_off:\n  sales: [Maria Lopez]\n  operations: [Omar Haddad]\n"
BAD_FILES = [  # (file text, the error: line, field path, reason)
    (HEAD + TAIL + "horizon: 6\nowner: Dana\n", "12: owner: unknown key 'owner'"),
    (HEAD.replace("unit: hours", "unit: hour") + TAIL, "1: unit: input should be 'hours' or 'units'"),
    (HEAD.replace("needs: 8", "neds: 8") + TAIL, "3: demand.per_deal_value.neds: unknown key 'neds' (did you mean "
                                                 "'needs'?)"),
    (HEAD.replace("value: 1000", "value: 0") + TAIL, "3: demand.per_deal_value.value: input should be greater than 0"),
    (HEAD + "  months:\n    2027-13: 300\n" + TAIL,
     "7: capacity.months.2027-13: '2027-13' must be a month as YYYY-MM, e.g. 2027-01"),
    (HEAD + "  months: {2027-02: -5}\n" + TAIL,
     "6: capacity.months.2027-02: input should be greater than or equal to 0"),
    (HEAD + TAIL.replace("deal_terms: 0.4", "deal_terms: 0.4\n  contract_mail: 0.7"),
     "8: stage_weights.contract_mail: 'contract_mail' is not a step of negotiation-closing (did you mean "
     "'contract_email'?)"),
    (HEAD + TAIL.replace("deal_terms: 0.4", "contract_email: 0.7"),
     "6: stage_weights: deal_terms needs a weight: every deal with recorded terms has reached it"),
    (HEAD + TAIL.replace("0.4", "1.5"), "7: stage_weights.deal_terms: input should be less than or equal to 1"),
    (HEAD + TAIL.replace("  operations: [Omar Haddad]\n", ""), "8: sign_off.operations: required field is missing"),
    (HEAD + TAIL.replace("[Omar Haddad]", "[]"),
     "10: sign_off.operations: list should have at least 1 item after validation, not 0"),
    (HEAD + TAIL + "horizon: 0\n", "11: horizon: input should be greater than or equal to 1"),
    (HEAD + TAIL + "horizon: &h 6\nextra: *h\n", "12: (yaml): YAML aliases like *h are not allowed"),
]


@pytest.mark.parametrize(("text", "expected"), BAD_FILES, ids=[e.split(": ")[1] + f"-{i}" for i, (_, e) in
                                                              enumerate(BAD_FILES)])
def test_an_invalid_capacity_file_names_the_line_field_and_reason(tmp_path, text, expected):
    path = tmp_path / "capacity.yaml"
    path.write_text(text)
    with pytest.raises(SopInvalid) as raised:
        load_capacity(path, NEGOTIATION)
    assert any(str(error).startswith(f"{path}:{expected}") for error in raised.value.errors), raised.value.errors


def test_validate_reports_the_capacity_file_with_the_sops(sop_dir, capsys):  # noqa: F811
    capacity = sop_dir / "planning" / "capacity.yaml"
    code, out, _ = cli(capsys, "validate")
    assert code == 0 and f"capacity file valid: {capacity}" in out
    capacity.write_text(capacity.read_text().replace("horizon: 6", "horizon: 6\nhorizn: 7"))
    code, out, err = cli(capsys, "validate")
    assert code == 1 and f"{capacity}:18: horizn: unknown key 'horizn' (did you mean 'horizon'?)" in err
    code, _, err = cli(capsys, "validate", str(capacity))  # the file alone, checked against the SOPs beside it
    assert code == 1 and f"{capacity}:18: horizn:" in err


def test_the_close_month_is_a_month_input():
    terms = next(step for step in NEGOTIATION.sop.steps if step.id == "deal_terms")
    assert isinstance(terms, ApprovalStep) and NEGOTIATION.sop.version == 3
    values, problems = check_inputs(terms, {"deal_value": "1000", "discount_percent": "5", "expected_close": "2027-3"})
    assert problems == [("expected_close", "'2027-3' is not a month as YYYY-MM, e.g. 2027-03")]
    values, problems = check_inputs(terms, {"deal_value": "1000", "discount_percent": "5", "expected_close": "2027-03"})
    assert problems == [] and values["expected_close"] == "2027-03"
    assert check_inputs(terms, {"deal_value": "1000", "discount_percent": "5"})[1] == []  # optional


# -- demand from a known pipeline ---------------------------------------------------------------------------------

def deal(session, name: str, *, state: str = "waiting", lead_status: str = "opportunity", sop: str =
         "negotiation-closing", terms: dict | None = None, later: tuple[str, ...] = ()) -> str:
    """A lead and its negotiation run: its terms step's result (none: still waiting for it), then `later` steps
    completed in order (a step named `-x` was skipped)."""
    lead = add_lead(session, LeadIn(email=f"{name}@secret.example", name=f"Secret {name.title()}"))[0]
    lead.status = lead_status
    run = runs.ensure_run(session, sop, lead.id)
    run.state = state
    if terms is not None:
        runs.record_step(session, run.id, "deal_terms", "approval", "completed",
                         {"decision": "approve", "approver": "Alex Kim", **terms}, T0)
    for step in later:
        runs.record_step(session, run.id, step.lstrip("-"), "x", "skipped" if step.startswith("-") else "completed",
                         {}, T0)
    return run.id


def seed(url: str) -> dict[str, str]:
    """Open opportunities in 2027-01 (A, and D slipped from 2026-11), 2027-02 (B, C), beyond the horizon (E), without
    a close month (F, G), awaiting terms (H); and runs that must not count (I-M)."""
    with transaction(url) as session:
        ids = {
            "A": deal(session, "a", terms={"deal_value": 10000, "expected_close": "2027-01"}),
            "B": deal(session, "b", terms={"deal_value": 20000, "expected_close": "2027-02"},
                      later=("-discount_approval", "contract_email")),
            "C": deal(session, "c", terms={"deal_value": 4000.0, "expected_close": " 2027-02"},
                      later=("discount_approval",)),
            "D": deal(session, "d", terms={"deal_value": 2000, "expected_close": "2026-11"}),
            "E": deal(session, "e", terms={"deal_value": 1000, "expected_close": "2027-06"}),
            "F": deal(session, "f", terms={"deal_value": 8000, "expected_close": None}),
            "G": deal(session, "g", terms={"deal_value": 3000, "expected_close": "next spring"}),
            "H": deal(session, "h", state="pending"),
        }
        deal(session, "i", state="completed", lead_status="customer",
             terms={"deal_value": 99000, "expected_close": "2027-01"}, later=("contract_email", "won"))
        deal(session, "j", state="failed", terms={"deal_value": 99000, "expected_close": "2027-01"})
        deal(session, "k", state="running", lead_status="closed_lost", terms={"deal_value": 99000,
                                                                            "expected_close": "2027-01"})
        deal(session, "l", terms={"deal_value": 99000, "expected_close": "2027-01", "decision": "reject"})
        deal(session, "m", sop="lead-qualification", terms={"deal_value": 99000, "expected_close": "2027-01"})
    return ids


def figures_of(url: str) -> dict:
    selects: list[str] = []

    def count(conn, cursor, statement, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            selects.append(statement)

    event.listen(engine(url), "before_cursor_execute", count)
    try:
        with transaction(url) as session:
            figures = plan_figures(session, CAPACITY, STEPS, "2027-01", now=T0)
    finally:
        event.remove(engine(url), "before_cursor_execute", count)
    assert len(selects) == 1, selects  # one set-based SELECT, however many runs
    return figures


def test_demand_is_weighted_by_stage_placed_by_close_month_and_nothing_is_dropped(store_url):
    ids = seed(store_url)
    figures = figures_of(store_url)
    assert figures["months"] == [
        {"month": "2027-01", "deals": 2, "weighted_value": 6000, "demand": 60, "capacity": 100, "gap": -40,
         "over": False},  # A 10000 x 0.5, D (slipped from 2026-11) 2000 x 0.5; 10 h per 1000 EUR
        {"month": "2027-02", "deals": 2, "weighted_value": 18000, "demand": 180, "capacity": 50, "gap": 130,
         "over": True},  # B 20000 x 0.8 (contract_email), C 4000 x 0.5 (discount_approval: deal_terms' weight)
        {"month": "2027-03", "deals": 0, "weighted_value": 0, "demand": 0, "capacity": 100, "gap": -100,
         "over": False}]
    assert figures["over"] == ["2027-02"]
    assert figures["opportunities"] == {"open": 8, "awaiting_terms": 1, "placed": 5, "slipped": 1,
                                        "beyond_horizon": 1, "unplaced": 2}
    assert figures["slipped"] == {"deals": 1, "weighted_value": 1000, "demand": 10}
    assert figures["beyond_horizon"] == {"deals": 1, "weighted_value": 500, "demand": 5}
    assert figures["unplaced"] == [
        {"run_id": ids["F"], "stage": "deal_terms", "reason": "no close month", "deal_value": 8000,
         "weighted_value": 4000},
        {"run_id": ids["G"], "stage": "deal_terms", "reason": "no close month", "deal_value": 3000,
         "weighted_value": 1500}]
    assert figures["stages"] == [
        {"stage": "deal_terms", "weight": 0.5, "deals": 5, "value": 24000, "weighted_value": 12000},
        {"stage": "discount_approval", "weight": 0.5, "deals": 1, "value": 4000, "weighted_value": 2000},
        {"stage": "contract_email", "weight": 0.8, "deals": 1, "value": 20000, "weighted_value": 16000}]
    assert (figures["sign_off"], figures["unit"], figures["capacity_hash"]) == (
        {"sales": ["Maria Lopez"], "operations": ["Omar Haddad", "Dana Reyes"]}, "hours", "c" * 64)
    shown = json.dumps(figures) + plan_markdown(figures)
    assert "secret" not in shown.lower()  # no lead's name or email in the plan


def test_stage_weights_fall_back_to_the_nearest_earlier_weighted_step():
    weights = {"deal_terms": 0.4, "contract_email": 0.7}
    assert [stage_weight(s, weights, STEPS) for s in ("deal_terms", "discount_approval", "contract_email",
                                                       "contract_signed", "a_step_of_an_older_version")] == [
        0.4, 0.4, 0.7, 0.7, 0.4]


def test_the_plans_month_is_the_one_asked_for_else_the_one_the_run_is_scheduled_in():
    assert plan_month("2027-01") == "2027-01"
    assert plan_month(None) == month_of(datetime.now(timezone.utc))  # outside a run: now


def test_months():
    assert months_from("2026-11", 4) == ["2026-11", "2026-12", "2027-01", "2027-02"]
    assert [parse_month(v) for v in ("2027-02", " 2027-02 ", "2027-2", "2027-13", "Feb", None, 202702)] == [
        "2027-02", "2027-02", None, None, None, None, None]


def test_months_over_capacity_in_words_table_and_chart(store_url):
    seed(store_url)
    figures = figures_of(store_url)
    assert over_words(figures) == ["2027-02: demand 180 h exceeds capacity 50 h by 130 h (260%)"]
    assert table_rows(figures)[1] == {"month": "2027-02", "weighted demand (h)": 180, "capacity (h)": 50,
                                      "gap (h)": 130, "over capacity": "yes"}
    markdown = plan_markdown(figures)
    assert "- 2027-02: demand 180 h exceeds capacity 50 h by 130 h (260%)" in markdown
    assert "| 2027-02 | 2 | 18,000 | 180 | 50 | 130 | **yes** |" in markdown
    assert "![Weighted demand vs capacity per month](data:image/svg+xml;base64," in markdown
    assert f"| {figures['unplaced'][0]['run_id']} | deal_terms | no close month | 8,000 | 4,000 |" in markdown
    svg = chart(figures)
    assert svg.startswith("<svg") and "Weighted demand 2027-02: 180 h" in svg and "Capacity 2027-02: 50 h" in svg
    calm = {**figures, "months": [{**m, "over": False} for m in figures["months"]], "over": []}
    assert over_words(calm) == [] and "**No month is over capacity** (2027-01 to 2027-03)." in plan_markdown(calm)


# -- sign-off -------------------------------------------------------------------------------------------------------

VIEW = {"roster": {"sales": ["Maria Lopez"], "operations": ["Omar Haddad", "Dana Reyes"]}}


def form(signer: str, decision: str = "approve", notes: str = "") -> SignOffForm:
    return SignOffForm(signer=signer, decision=decision, notes=notes)


def test_only_the_roles_roster_may_sign_off():
    assert signer_problem(VIEW, "sales", form("maria lopez")) is None  # the roster's name, any case
    assert signer_problem(VIEW, "sales", form("Omar Haddad")) == (
        "'Omar Haddad' is not on the sales roster (Maria Lopez); ask one of them to answer")
    assert signer_problem(VIEW, "operations", form("Maria Lopez")) == (
        "'Maria Lopez' is not on the operations roster (Omar Haddad, Dana Reyes); ask one of them to answer")
    assert signer_problem(VIEW, "operations", form("Dana Reyes", "needs_changes")) == (
        "needs_changes needs notes that say what must change")
    assert signer_problem(VIEW, "operations", form("Dana Reyes", "needs_changes", "hire one more")) is None
    assert "control or invisible character" in signer_problem(VIEW, "sales", form("Maria Lopez", notes="ok\x1b[2J"))


def test_a_plan_is_signed_once_per_role_and_done_when_both_answered(store_url):
    with transaction(store_url) as session:
        plan, holds = plans.claim_plan(session, "2027-01", "run-1")
        plan.figures = {"over": ["2027-02"]}
        plan_id = plan.id
    with transaction(store_url) as session:
        plan = plans.record_sign_off(session, plan_id, "sales", "Maria Lopez", "approve", "", at=T0)
        assert (plan.state, plans.signed(plan, "sales")) == ("open", {
            "by": "Maria Lopez", "at": T0.isoformat(), "decision": "approve", "notes": None})
        again = plans.record_sign_off(session, plan_id, "sales", "Someone Else", "needs_changes", "no")
        assert plans.signed(again, "sales")["by"] == "Maria Lopez"  # a replay keeps the first answer
        plan = plans.record_sign_off(session, plan_id, "operations", "Omar Haddad", "approve", "fine", at=T0)
        signed = {role: plans.signed(plan, role) for role in plans.ROLES}
    assert plan.state == "signed" and holds
    assert sign_off_words("2027-01", signed, "1 month over capacity") == (
        "S&OP 2027-01 signed off by Maria Lopez (sales) and Omar Haddad (operations); 1 month over capacity")
    changes = {**signed, "operations": {**signed["operations"], "decision": "needs_changes"}}
    assert sign_off_words("2027-01", changes, "no month over capacity") == (
        "S&OP 2027-01 needs changes, asked by Omar Haddad (operations); approved by Maria Lopez (sales); "
        "no month over capacity")
    assert sign_off_words("2027-01", {**signed, "operations": None}, "1 month over capacity") == (
        "S&OP 2027-01 waits for operations sign-off; approved by Maria Lopez (sales); 1 month over capacity")


def test_one_plan_per_month_whatever_number_of_runs_claim_it(store_url):
    def claim(i: int) -> tuple[str, bool]:
        with transaction(store_url) as session:
            plan, holds = plans.claim_plan(session, "2027-01", f"run-{i}")
            return plan.flow_run_id, holds

    engine(store_url)  # the store exists before its claimers start, as `sopflow up` makes it first
    counter = iter(range(100))
    claimed = in_threads(6, lambda: claim(next(counter)))
    holders = {holder for holder, _ in claimed}
    assert len(holders) == 1 and sum(holds for _, holds in claimed) == 1
    with transaction(store_url) as session:
        assert session.scalar(select(func.count()).select_from(SnopPlan)) == 1
        plan = plans.plan_for(session, "2027-01")
        assert plans.plan_of_run(session, holders.pop()) == plan
        assert plans.claim_plan(session, "2027-01", plan.flow_run_id)[1] is True  # its own run holds it again
        taken = plans.take_over(session, plan, plan.flow_run_id, "run-new")  # that run ended: another asks again
        assert taken.flow_run_id == "run-new"
        assert plans.take_over(session, taken, "run-stale", "run-late").flow_run_id == "run-new"  # lost the race


def test_a_run_holds_its_months_plan_and_a_later_run_plans_nothing_twice(sop_dir, store_url):  # noqa: F811
    first, taken, _ = hold_plan("2027-01", "run-1")
    assert first is not None and taken  # this run claimed it: it publishes the artifacts
    again, taken, _ = hold_plan("2027-01", "run-1")  # re-executed after a resume: found by its run, nothing published
    assert again is not None and again.id == first.id and not taken
    with transaction(store_url) as session:
        plan = session.get_one(SnopPlan, first.id)
        plan.figures = {"over": []}
        plans.record_sign_off(session, plan.id, "sales", "Maria Lopez", "approve", "")
        plans.record_sign_off(session, plan.id, "operations", "Omar Haddad", "approve", "")
    assert hold_plan("2027-01", "run-2") == (
        None, False, "S&OP 2027-01 is signed off in flow run run-1; a month is planned once")


# -- the command ----------------------------------------------------------------------------------------------------

def test_sopflow_snop_prints_the_plan_and_refuses_a_bad_month(sop_dir, store_url, capsys):  # noqa: F811
    code, _, err = cli(capsys, "snop", "--month", "2027-13")
    assert (code, err) == (2, "sopflow snop: --month '2027-13' is not a month; give it as YYYY-MM, e.g. 2026-12\n")
    seed(store_url)
    code, out, err = cli(capsys, "snop", "--month", "2027-01", "--json")
    live = json.loads(out)
    assert code == 0 and (live["state"], live["flow_run_id"], live["signed"]) == (
        "not opened", None, {"sales": None, "operations": None})
    assert [m["month"] for m in live["months"]] == months_from("2027-01", 6)  # the seed file's horizon
    assert live["months"][0]["demand"] == 38.4  # seed file: 8 h per 1000 EUR; A and D at deal_terms' weight 0.4
    with transaction(store_url) as session:
        plan, _ = plans.claim_plan(session, "2027-01", "run-1")
        plan.figures = plan_figures(session, CAPACITY, STEPS, "2027-01", now=T0)
        plans.record_sign_off(session, plan.id, "sales", "Maria Lopez", "approve", "", at=T0)
    code, out, err = cli(capsys, "snop", "--month", "2027-01")
    assert code == 0, err
    assert "S&OP 2027-01 (open)" in out and "2027-02: demand 180 h exceeds capacity 50 h by 130 h (260%)" in out
    assert "S&OP 2027-01 waits for operations sign-off; approved by Maria Lopez (sales); 1 month over capacity" in out
    assert "Not placed in a month: run" in out and "secret" not in out.lower()
    shutil.rmtree(sop_dir / "planning")  # a frozen plan needs no capacity file; a live one does
    assert cli(capsys, "snop", "--month", "2027-01")[0] == 0
    code, _, err = cli(capsys, "snop", "--month", "2027-04")
    assert code == 1 and "planning/capacity.yaml:1: (file): no capacity file" in err
