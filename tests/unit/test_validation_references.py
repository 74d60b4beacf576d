"""Validation catches what runs would get wrong: references to values earlier steps do not give,
values outside a choice, schema and whole-SOP errors in one pass, and templates that print empty lead values."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sopflow.catalog import validate, validate_report
from sopflow.checks import NULLABLE_LEAD_KEYS, RESULT_KEYS, step_outputs
from sopflow.errors import SopError
from sopflow.leads import LEAD_CONTEXT_KEYS
from sopflow.loader import load_sop
from sopflow.schema import ScoreRule, ScoreStep
from sopflow.scoring import score_lead
from sopflow.store.models import Lead
from tests.sop_samples import MINIMAL

ERROR_LINE = re.compile(r"^(?P<file>\S+\.yaml):(?P<line>\d+): (?P<field>[\w.]+): (?P<reason>.+)$")
TEMPLATE_BLOCKS = "{{% block subject %}}Hello{{% endblock %}}\n{{% block text %}}\n{}\n{{% endblock %}}\n"

APPROVAL = """\
  - id: deal_terms
    kind: approval
    owner: rep
    prompt: Record the terms
    inputs:
      deal_value: {label: Deal value, type: number}
      tier: {label: Tier, type: choice, choices: [standard, premium]}
"""
SCORE = """\
  - id: score_lead
    kind: score
    owner: rep
    rules: [{label: Senior, field: title, contains_any: [vp], points: 30}]
"""
TASK = """\
  - id: enrich
    kind: task
    owner: rep
    function: enrich_company
    outputs: [revenue, country]
"""


def _when(condition: str) -> str:
    return f"  - id: later\n    kind: update_lead\n    owner: rep\n    status: qualified\n    when: '{condition}'\n"


EMAIL = "  - id: later\n    kind: email\n    owner: rep\n    template: mail\n"

# (case id, earlier step, later step, template body or None, the wrong name, the right one, part of the reason)
REFERENCES = [
    ("condition_missing_input", APPROVAL, _when("steps.deal_terms.deal_valeu > 10"), None,
     "deal_valeu", "deal_value", "approval step 'deal_terms' gives no 'deal_valeu' (did you mean 'deal_value'?)"),
    ("template_missing_input", APPROVAL, EMAIL, "{{ steps.deal_terms.deal_valeu }}",
     "deal_valeu", "deal_value", "approval step 'deal_terms' gives no 'deal_valeu' (did you mean 'deal_value'?)"),
    ("condition_misspelled_decision", APPROVAL, _when('steps.deal_terms.decison == "approve"'), None,
     "decison", "decision", "gives no 'decison' (did you mean 'decision'?)"),
    ("template_misspelled_decision", APPROVAL, EMAIL, "{% if steps.deal_terms.desicion %}yes{% endif %}",
     "desicion", "decision", "gives no 'desicion' (did you mean 'decision'?)"),
    ("condition_missing_score_output", SCORE, _when('steps.score_lead.grdae == "A"'), None,
     "grdae", "grade", "score step 'score_lead' gives no 'grdae' (did you mean 'grade'?)"),
    ("template_missing_score_output", SCORE, EMAIL, "Score {{ steps.score_lead.scroe }}",
     "scroe", "score", "score step 'score_lead' gives no 'scroe' (did you mean 'score'?)"),
    ("condition_missing_task_output", TASK, _when("steps.enrich.revenu > 1000"), None,
     "revenu", "revenue", "task step 'enrich' gives no 'revenu' (did you mean 'revenue'?)"),
    ("template_missing_task_output", TASK, EMAIL, "From {{ steps.enrich.contry }}",
     "contry", "country", "task step 'enrich' gives no 'contry' (did you mean 'country'?)"),
    ("choice_value_outside", APPROVAL, _when('steps.deal_terms.tier == "premum"'), None,
     "premum", "premium", "'premum', which is not one of its choices: standard, premium (did you mean 'premium'?)"),
    ("choice_value_outside_in_list", APPROVAL, _when('steps.deal_terms.tier in ["standard", "premiun"]'), None,
     "premiun", "premium", "not one of its choices: standard, premium (did you mean 'premium'?)"),
    ("decision_value_outside", APPROVAL, _when('steps.deal_terms.decision != "aprove"'), None,
     "aprove", "approve", "not one of its choices: approve, reject (did you mean 'approve'?)"),
    ("lead_status_value_outside", SCORE, _when('lead.status == "qualifed"'), None,
     "qualifed", "qualified", "(did you mean 'qualified'?)"),
]


def write_sop(directory: Path, steps: str, template: str | None = None) -> Path:
    """MINIMAL with `steps` appended, and templates/mail.j2 whose text block is `template`."""
    if template is not None:
        (directory / "templates").mkdir(exist_ok=True)
        (directory / "templates" / "mail.j2").write_text(TEMPLATE_BLOCKS.format(template))
    path = directory / "sop.yaml"
    path.write_text(MINIMAL + steps)
    return path


def line_of(path: Path, text: str) -> int:
    """The last line of `path` that holds `text`."""
    return max(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


@pytest.fixture(autouse=True)
def _registered_task(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPFLOW_TASKS", "enrich_company=acme_sales.enrich:run")


@pytest.mark.parametrize(("earlier", "later", "template", "wrong", "right", "reason"),
                         [case[1:] for case in REFERENCES], ids=[case[0] for case in REFERENCES])
def test_reference_to_what_no_earlier_step_gives_is_an_error(
    tmp_path: Path, earlier: str, later: str, template: str | None, wrong: str, right: str, reason: str,
) -> None:
    path = write_sop(tmp_path, earlier + later, template)
    loaded, errors = validate([path])
    field, key = ("steps.2.template", "template:") if template is not None else ("steps.2.when", "when:")
    assert loaded == [] and len(errors) == 1, "\n".join(map(str, errors))
    error = errors[0]
    assert (error.file, error.line, error.field) == (path, line_of(path, key), field), error
    assert reason in error.reason, error
    assert ERROR_LINE.match(str(error)), error
    # the same SOP spelled right is valid: the error came from the wrong name
    path = write_sop(tmp_path, earlier + later.replace(wrong, right), template and template.replace(wrong, right))
    assert validate([path])[1] == []


def test_a_name_with_no_close_match_lists_the_known_ones(tmp_path: Path) -> None:
    path = write_sop(tmp_path, APPROVAL + _when("steps.deal_terms.budget > 10"))
    [error] = validate([path])[1]
    assert "gives no 'budget'; known: " in error.reason
    assert "deal_value" in error.reason and "decision" in error.reason


def test_a_task_without_declared_outputs_may_give_anything(tmp_path: Path) -> None:
    undeclared = TASK.replace("    outputs: [revenue, country]\n", "")
    assert validate([write_sop(tmp_path, undeclared + _when("steps.enrich.anything > 1"))])[1] == []


def test_step_outputs_follow_the_step(tmp_path: Path) -> None:
    steps = load_sop(write_sop(tmp_path, APPROVAL + TASK)).sop.steps
    assert step_outputs(steps[1]) == ["status", "reason", "decision", "approver", "notes", "asks", "deal_value", "tier"]
    assert step_outputs(steps[2]) == ["status", "reason", "revenue", "country"]


def test_score_outputs_are_what_scoring_returns() -> None:
    rule = ScoreRule(label="Senior", field="title", contains_any=["vp"], points=30)
    grades = ScoreStep.model_fields["grades"].get_default(call_default_factory=True)
    result = score_lead([rule], grades, {"title": "VP"})
    assert set(RESULT_KEYS["score"]) == set(result)


def test_nullable_lead_keys_are_the_nullable_columns_of_a_lead() -> None:
    nullable = {column.name for column in Lead.__table__.columns if column.nullable} & LEAD_CONTEXT_KEYS
    assert NULLABLE_LEAD_KEYS == nullable | {"first_name", "stage"}


# --- one pass: schema errors and whole-SOP errors together ---

MIXED = """\
  - id: wait_a_bit
    kind: wait
    owner: rep
    duration: 2 days
  - id: review
    kind: approval
    owner: sales
    prompt: Approve?
  - id: follow
    kind: update_lead
    owner: rep
    status: qualified
    colour: red
    next: nowhere
"""


def test_schema_and_whole_sop_errors_are_reported_in_one_run(tmp_path: Path) -> None:
    path = write_sop(tmp_path, MIXED)
    loaded, errors = validate([path])
    found = {(e.line, e.field) for e in errors}
    assert loaded == []
    assert found == {
        (line_of(path, "duration: 2 days"), "steps.1.duration"),  # schema
        (line_of(path, "owner: sales"), "steps.2.owner"),  # whole-SOP: unknown role
        (line_of(path, "colour: red"), "steps.3.colour"),  # schema: unknown key
        (line_of(path, "next: nowhere"), "steps.3.next"),  # whole-SOP, in the same schema-invalid step
    }, "\n".join(map(str, errors))
    assert len(errors) == len(found)  # none twice
    assert "role 'sales' is not defined" in next(e.reason for e in errors if e.field == "steps.2.owner")


def test_a_step_the_schema_refuses_is_not_checked_again(tmp_path: Path) -> None:
    broken = "  - {id: broken, kind: update_lead, owner: nobody, when: 'lead.revenue > 1'}\n"  # no change given
    path = write_sop(tmp_path, broken)
    errors = validate([path])[1]
    assert [e.field for e in errors] == ["steps.1"], "\n".join(map(str, errors))


def test_references_to_a_schema_invalid_step_are_not_reported(tmp_path: Path) -> None:
    invalid_earlier = APPROVAL.replace("    inputs:\n", "    due_within: soon\n    inputs:\n")
    path = write_sop(tmp_path, invalid_earlier + _when("steps.deal_terms.deal_value > 10") + "    next: end\n")
    errors = validate([path])[1]
    assert [e.field for e in errors] == ["steps.1.due_within"], "\n".join(map(str, errors))


def test_roles_that_do_not_parse_give_no_role_errors(tmp_path: Path) -> None:
    path = tmp_path / "sop.yaml"
    path.write_text(MINIMAL.replace("roles: {rep: [Alex Kim]}", "roles: {rep: []}"))
    errors = validate([path])[1]
    assert [e.field for e in errors] == ["roles.rep"], "\n".join(map(str, errors))


# --- templates that print empty lead values ---

PRINTS = [
    ("{{ lead.company }}", True),
    ("Hi {{ lead.first_name | upper }}", True),
    ('{{ "{}".format(lead.title) }}', True),
    ("{{ lead.company or lead.name }}", True),  # lead.name is printed when both are empty
    ('{{ lead.company | default("your team") }}', False),
    ('{{ lead.company | d("your team") }}', False),
    ('{{ lead.company or "your team" }}', False),
    ("{% if lead.company %}at {{ lead.company }}{% endif %}", False),
    ('{{ lead.company if lead.company else "your team" }}', False),
    ("{{ lead.email }} {{ lead.status }}", False),  # never empty
    ("{% if lead.company %}{{ lead.name }}{% endif %}", True),  # guarded by another value
]


@pytest.mark.parametrize(("body", "warned"), PRINTS)
def test_printing_an_empty_lead_value_without_a_default_is_a_warning(tmp_path: Path, body: str, warned: bool) -> None:
    path = write_sop(tmp_path, EMAIL, body)
    report = validate_report([path])
    assert report.errors == [] and [item.sop.id for item in report.loaded] == ["minimal"]  # warnings never fail
    assert bool(report.warnings) is warned, report.warnings
    for warning in report.warnings:
        assert str(warning).startswith(f"{path}:{line_of(path, 'template:')}: steps.1.template: warning: template mail")
        assert "| default(" in warning.reason
        assert isinstance(warning, SopError)
    assert list(report.loaded[0].warnings) == report.warnings


def test_warnings_of_an_invalid_file_are_reported_with_its_errors(tmp_path: Path) -> None:
    path = write_sop(tmp_path, EMAIL + "    next: nowhere\n", "{{ lead.name }}")
    report = validate_report([path])
    assert [e.field for e in report.errors] == ["steps.1.next"]
    assert [w.field for w in report.warnings] == ["steps.1.template"]


def test_the_seed_sops_have_no_warnings() -> None:
    report = validate_report([Path(__file__).resolve().parents[2] / "sop_definitions"])
    assert report.errors == [] and report.warnings == []
