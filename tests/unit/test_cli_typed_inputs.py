"""Approval inputs keep their type: a number entered as 25000 is recorded, sent and shown as 25000, never 25000.0."""

from __future__ import annotations

import json

from sopflow.catalog import load_all
from sopflow.cli import main
from sopflow.forms import check_inputs, shown
from sopflow.leads import LeadIn
from sopflow.plan import compile_plan
from sopflow.settings import PROJECT_ROOT
from sopflow.store import approvals, runs
from sopflow.store.db import transaction
from sopflow.store.leads import add_lead
from sopflow.store.models import StepRecord
from tasks.approval import ask, form_for
from tasks.records import StepCall
from tests.approval_samples import answered
from tests.unit.test_cli import store  # noqa: F401  (the fixture: an empty SQLite store)

SOPS = load_all(PROJECT_ROOT / "sop_definitions")
PLAN = compile_plan(SOPS["negotiation-closing"])


def approval_step(sop_id: str, step_id: str):
    return next(s for s in SOPS[sop_id].sop.steps if s.id == step_id)


def test_the_form_keeps_numbers_as_typed_and_its_schema_unchanged():
    step = approval_step("negotiation-closing", "deal_terms")
    form = form_for(step)
    assert form.model_json_schema()["properties"]["deal_value"] == {
        "minimum": 0, "title": "Deal value (EUR per year)", "type": "number"}
    filled = form.model_validate({"decision": "approve", "approver": "Alex Kim", "deal_value": 25000.0,
                                  "discount_percent": 12.5})
    values = filled.model_dump(include=set(step.inputs))
    assert values == {"deal_value": 25000, "discount_percent": 12.5, "expected_close": None}  # optional, not given
    assert type(values["deal_value"]) is int
    satisfaction = approval_step("post-sale-follow-up", "satisfaction_check")
    assert check_inputs(satisfaction, {"satisfaction": "4"}) == ({"satisfaction": 4}, [])
    assert check_inputs(satisfaction, {"satisfaction": "4.5"})[1] == [("satisfaction", "'4.5' is not a whole number")]
    assert [shown(v) for v in (25000.0, 25000, 12.5, True, None, "")] == ["25000", "25000", "12.5", "yes", "—", "—"]


def test_an_answer_is_recorded_and_shown_with_its_numbers_as_typed(store, capsys):
    with transaction() as session:
        lead_id = add_lead(session, LeadIn(email="ana@example.com", company="Acme"))[0].id
        run_id = runs.begin_run(session, "negotiation-closing", lead_id, "flow-run-1", 1, "hash").id
        ask_id = approvals.open_ask(session, run_id, "deal_terms", "rep", "Terms?", None).id
    form = form_for(approval_step("negotiation-closing", "deal_terms")).model_validate(
        {"decision": "approve", "approver": "Alex Kim", "deal_value": 25000.0, "discount_percent": 20.0})

    result = answered(StepCall(PLAN, run_id, lead_id, "deal_terms"), ask_id, form)

    assert (result["deal_value"], result["discount_percent"]) == (25000, 20)
    with transaction() as session:
        stored = runs.step_record(session, run_id, "deal_terms")
        assert isinstance(stored, StepRecord) and stored.result["deal_value"] == 25000
        assert type(stored.result["deal_value"]) is int
    asked = ask(StepCall(PLAN, run_id, lead_id, "discount_approval"))  # the manager's form shows the terms
    assert "deal\\_value: 25000, discount\\_percent: 20" in asked["description"]
    assert "25000.0" not in asked["description"]

    assert main(["lead", "show", lead_id]) == 0
    out = capsys.readouterr().out
    assert "approved by Alex Kim (deal_value: 25000, discount_percent: 20, expected_close: —)" in out
    assert "25000.0" not in out
    assert main(["lead", "show", lead_id, "--json"]) == 0
    steps = json.loads(capsys.readouterr().out)["runs"][0]["steps"]
    assert steps[0]["result"]["deal_value"] == 25000 and '"deal_value": 25000,' in json.dumps(steps[0]["result"])
