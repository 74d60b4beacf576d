"""Every invalid SOP in tests/invalid_sops/ is reported as FILE:LINE: FIELD.PATH: reason."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sopflow import cli
from sopflow.catalog import validate, validate_report
from sopflow.errors import SopInvalid
from sopflow.loader import load_sop
from tests.sop_samples import MINIMAL

TESTS = Path(__file__).resolve().parents[1]
INVALID = TESTS / "invalid_sops"
SOP_DIR = TESTS.parent / "sop_definitions"

# (file in tests/invalid_sops/ without .yaml, line, field path, part of the reason)
CASES = [
    ("yaml_syntax_error", 3, "(yaml)", "not valid YAML"),
    ("duplicate_key", 4, "name", "duplicate key 'name'"),
    ("top_level_list", 1, "(top)", "must be a mapping"),
    ("unknown_top_key", 20, "complience", "did you mean 'compliance'?"),
    ("missing_deadline", 6, "objective.deadline", "required field is missing"),
    ("sop_id_not_kebab_case", 2, "id", "must be lower-kebab-case"),
    ("trigger_event_and_cron", 15, "trigger", "exactly one of event"),
    ("review_owner_unknown_role", 19, "review.owner", "role 'ops' is not defined"),
    ("unknown_step_kind", 33, "steps.2.kind", "did you mean 'email'?"),
    ("step_without_kind", 32, "steps.2", "a step needs a kind"),
    ("bad_duration", 30, "steps.1.due_within", "must be a duration like 30m"),
    ("step_id_not_snake_case", 21, "steps.0.id", "must be lower_snake_case"),
    ("duplicate_step_id", 32, "steps.2.id", "'review_lead' is already used by steps.1"),
    ("step_owner_unknown_role", 34, "steps.2.owner", "role 'sales' is not defined"),
    ("assign_to_unknown_role", 40, "steps.3.assign_to", "role 'sales' is not defined"),
    ("email_template_missing", 35, "steps.2.template", "template 'welcome' not found"),
    ("template_unknown_variable", 35, "steps.2.template", "uses 'lead.revenue', but a lead has no 'revenue'"),
    ("template_without_subject", 35, "steps.2.template", "has no subject block"),
    ("when_unparsable", 30, "steps.1.when", "cannot parse condition"),
    ("when_unknown_lead_field", 30, "steps.1.when", "lead field 'revenue' is not defined"),
    ("when_later_step", 30, "steps.1.when", "steps.follow_up, which is a later step"),
    ("next_unknown_step", 40, "steps.3.next", "step 'finish' is not defined"),
    ("on_reject_unknown_step", 31, "steps.1.on_reject", "did you mean 'disqualify'?"),
    ("cycle", 40, "steps.3.next", "steps loop back"),
    ("update_lead_no_change", 36, "steps.3", "needs status, assign_to or fields"),
    ("task_not_registered", 29, "steps.1.function", "add enrich_company=module:function to SOPFLOW_TASKS"),
    ("score_rule_without_matcher", 25, "steps.0.rules.0", "a rule needs a matcher"),
    ("measure_unknown_kind", 12, "objective.measure.kind", "unknown measure kind 'conversions'; expected one of "
     "conversion, input_average, leads_reaching_status, median_time_to_step, runs_completed, sla_adherence "
     "(did you mean 'conversion'?)"),
    ("measure_unknown_step", 14, "objective.measure.step",
     "the measure's step 'review_leads' is not a step of this SOP (did you mean 'review_lead'?)"),
    ("measure_step_not_approval", 12, "objective.measure.step", "sla_adherence measures an approval step, but step "
     "'follow_up' is of kind email; approval steps of this SOP: review_lead"),
    ("measure_sla_without_due_within", 12, "objective.measure.step",
     "approval step 'review_lead' has no due_within, so it has no due time to measure answers against; "
     "add due_within to the step"),
    ("measure_input_not_on_step", 12, "objective.measure.input",
     "approval step 'review_lead' records no input 'budgte' (did you mean 'budget'?)"),
    ("measure_input_not_numeric", 12, "objective.measure.input", "input 'fit' of step 'review_lead' is text, but "
     "input_average averages a number or integer input; its number inputs: budget"),
    ("measure_same_statuses", 12, "objective.measure.to_status", "from_status and to_status are both 'qualified', "
     "but a conversion goes from one status to another"),
    ("measure_percent_target", 10, "objective.target",
     "conversion is a percent measure, so the target is a share between 0 and 1: write 0.25 for 25%"),
]

ERROR_LINE = re.compile(r"^(?P<file>\S+\.yaml):(?P<line>\d+): (?P<field>[\w.()]+): (?P<reason>.+)$")


def _errors(path: Path) -> list:
    with pytest.raises(SopInvalid) as info:
        load_sop(path)
    return info.value.errors


@pytest.mark.parametrize(("name", "line", "field", "reason"), CASES, ids=[c[0] for c in CASES])
def test_invalid_sop_is_reported_at_its_line(name: str, line: int, field: str, reason: str) -> None:
    path = INVALID / f"{name}.yaml"
    errors = _errors(path)
    found = [e for e in errors if e.line == line and e.field == field and reason in e.reason]
    assert found, "expected {}:{}: {}: ...{}... in:\n{}".format(path, line, field, reason, "\n".join(map(str, errors)))
    assert str(found[0]).startswith(f"{path}:{line}: {field}: ")


@pytest.mark.parametrize("name", [c[0] for c in CASES])
def test_each_file_has_exactly_one_error(name: str) -> None:
    errors = _errors(INVALID / f"{name}.yaml")
    assert len(errors) == 1, "\n".join(map(str, errors))


def test_every_invalid_file_is_in_the_table() -> None:
    assert {p.stem for p in INVALID.glob("*.yaml")} == {c[0] for c in CASES}


def test_cli_validate_reports_an_invalid_file(capsys: pytest.CaptureFixture[str]) -> None:
    path = INVALID / "on_reject_unknown_step.yaml"
    assert cli.main(["validate", str(path)]) == 1
    err = capsys.readouterr().err
    assert f"{path}:31: steps.1.on_reject: step 'disqualfy' is not defined" in err


def test_cli_validate_reports_every_file_of_a_directory(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(INVALID)]) == 1
    lines = capsys.readouterr().err.splitlines()
    matches = [ERROR_LINE.match(line) for line in lines]
    assert all(matches), [line for line, m in zip(lines, matches) if not m]
    assert {Path(m["file"]).stem for m in matches} == {c[0] for c in CASES}
    reported = {(Path(m["file"]).stem, int(m["line"]), m["field"]) for m in matches}
    assert {(name, line, field) for name, line, field, _ in CASES} <= reported


def test_cli_validate_accepts_the_sop_definitions(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", str(SOP_DIR)]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "lead-qualification" in out


def test_two_files_with_the_same_sop_id_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    first, second = tmp_path / "a.yaml", tmp_path / "b.yaml"
    first.write_text(MINIMAL)
    second.write_text(MINIMAL.replace("name: Minimal SOP", "name: Another SOP"))
    loaded, errors = validate([tmp_path])
    assert len(loaded) == 2
    assert [str(e) for e in errors] == [f"{second}:1: id: SOP id 'minimal' is also used by {first}"]
    assert cli.main(["validate", str(tmp_path)]) == 1
    assert f"{second}:1: id: " in capsys.readouterr().err


def test_distinct_sop_ids_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL)
    (tmp_path / "b.yaml").write_text(MINIMAL.replace("id: minimal", "id: another"))
    loaded, errors = validate([tmp_path])
    assert errors == []
    assert sorted(item.sop.id for item in loaded) == ["another", "minimal"]


def test_cli_validate_reports_schema_and_whole_sop_errors_of_a_file_together(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(MINIMAL.replace("status: working}", "status: working, due_within: soon}")
                    + "  - {id: review, kind: approval, owner: sales, prompt: Approve it}\n")
    assert cli.main(["validate", str(path)]) == 1
    lines = capsys.readouterr().err.splitlines()
    assert f"{path}:10: steps.0.due_within: 'soon' must be a duration like 30m, 4h, 2d or 1w" in lines
    assert f"{path}:11: steps.1.owner: role 'sales' is not defined; known: rep" in lines
    assert len(lines) == 2, lines


def test_a_second_scoring_model_is_refused_and_none_is_a_warning(tmp_path):
    score = "{id: score_it, kind: score, owner: rep, rules: [{label: Big, field: employees, at_least: 200, points: 5}]"
    for name in ("first", "second"):
        (tmp_path / f"{name}.yaml").write_text(MINIMAL.replace("id: minimal", f"id: {name}").replace(
            "  - {id: mark_working, kind: update_lead, owner: rep, status: working}", f"  - {score}, scores_lead: true}}"))
    report = validate_report([tmp_path])
    assert [str(e) for e in report.errors] == [
        f"{tmp_path / 'second.yaml'}:10: steps.0.scores_lead: first/score_it (first.yaml) is already the lead's "
        "scoring model; only one score step may set scores_lead: true"]

    (tmp_path / "second.yaml").unlink()
    (tmp_path / "first.yaml").write_text((tmp_path / "first.yaml").read_text().replace(", scores_lead: true", ""))
    report = validate_report([tmp_path])
    assert report.errors == [] and [w.field for w in report.warnings] == ["steps.0"]
    assert "leads carry no score" in str(report.warnings[0]) and ": warning: " in str(report.warnings[0])


def test_an_objective_without_a_measure_is_a_warning(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "unmeasured.yaml"
    path.write_text(MINIMAL.replace(", measure: {kind: runs_completed, per: month}", ""))
    report = validate_report([path])
    assert report.errors == [] and [item.sop.id for item in report.loaded] == ["minimal"]  # warnings never fail
    assert [(w.line, w.field) for w in report.warnings] == [(5, "objective")]
    assert "the objective has no measure, so `sopflow report` cannot compute its KPI" in report.warnings[0].reason
    assert "measure: {kind: runs_completed, per: month}" in report.warnings[0].reason
    assert list(report.loaded[0].warnings) == report.warnings
    assert cli.main(["validate", str(path)]) == 0
    assert f"{path}:5: objective: warning: the objective has no measure" in capsys.readouterr().err

    path.write_text(MINIMAL)  # with its measure
    assert validate_report([path]).warnings == []
