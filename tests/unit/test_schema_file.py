"""The published JSON schema is current, and the SOPs in sop_definitions/ are valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from sopflow import cli, reference, schema_file
from sopflow.catalog import validate, validate_report
from sopflow.loader import load_sop
from sopflow.schema import MEASURE_KINDS, STEP_KINDS, Sop, StepBase
from sopflow.schema_file import SCHEMA_FILE, schema_text, stale, write_all

SOP_DIR = Path(__file__).resolve().parents[2] / "sop_definitions"


def test_schema_file_is_published_in_sop_definitions() -> None:
    assert SCHEMA_FILE == SOP_DIR / "sop.schema.json"


def test_published_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "sop_definitions/sop.schema.json is stale; run `sopflow schema --write`"
    )


def test_generated_files_are_current() -> None:
    assert stale() == [], "stale generated files; run `sopflow schema --write`"


def test_the_reference_is_in_docs() -> None:
    assert reference.DOC_FILE == SOP_DIR.parent / "docs" / "sop-format.md"
    assert "docs/sop-format.md" in (SOP_DIR.parent / "README.md").read_text()


def test_write_all_writes_the_schema_and_the_reference(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    schema, doc = tmp_path / "sop.schema.json", tmp_path / "docs" / "sop-format.md"
    monkeypatch.setattr(schema_file, "SCHEMA_FILE", schema)
    monkeypatch.setattr(reference, "DOC_FILE", doc)
    assert stale() == [schema, doc]
    assert write_all() == [schema, doc]
    assert (schema.read_text(), doc.read_text()) == (schema_text(), reference.reference_text())
    assert stale() == []
    doc.write_text(doc.read_text().replace("| `rules` |", "| `rule` |"))
    assert stale() == [doc]


def test_the_reference_documents_every_field() -> None:
    text = reference.reference_text()
    models = [Sop, StepBase, *reference.STEP_MODELS.values(), *reference.MEASURE_MODELS.values()]
    for model in models:
        for name, info in model.model_fields.items():
            assert f"| `{name}` |" in text, f"{model.__name__}.{name} is not documented"
            assert info.description, f"{model.__name__}.{name} has no description"
    assert sorted(reference.STEP_MODELS) == sorted(STEP_KINDS) == sorted(reference.EXAMPLES)
    for kind in STEP_KINDS:
        assert f"### {kind}\n" in text and reference.EXAMPLES[kind] in text
    assert sorted(reference.MEASURE_MODELS) == sorted(MEASURE_KINDS)
    for kind in MEASURE_KINDS:
        assert f"#### {kind}\n" in text
    assert "| `measure` | [measure](#measure) | optional |" in text


@pytest.mark.parametrize("kind", STEP_KINDS)
def test_each_example_of_the_reference_loads(kind: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOPFLOW_TASKS", reference.EXAMPLE_TASKS)
    (tmp_path / "templates").symlink_to(SOP_DIR / "templates")
    path = tmp_path / f"{kind}.yaml"
    path.write_text(reference.example_sop(kind))
    report = validate_report([path])
    assert (report.errors, report.warnings) == ([], []), "\n".join(map(str, report.errors + report.warnings))
    assert kind in {step.kind for step in report.loaded[0].sop.steps}


def test_schema_command_prints_the_schema(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["schema"]) == 0
    assert capsys.readouterr().out == schema_text()


def test_sop_definitions_validate() -> None:
    loaded, errors = validate([SOP_DIR])
    assert errors == []
    assert "lead-qualification" in {item.sop.id for item in loaded}


@pytest.mark.parametrize("path", sorted(SOP_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_each_sop_definition_loads(path: Path) -> None:
    assert load_sop(path).path == path


def _as_json(path: Path) -> object:
    return json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))  # dates become strings


def test_published_schema_accepts_the_example_and_refuses_unknown_keys() -> None:
    schema = json.loads(SCHEMA_FILE.read_text())
    sop = _as_json(SOP_DIR / "lead-qualification.yaml")
    jsonschema.validate(sop, schema)
    sop["complience"] = []
    with pytest.raises(jsonschema.ValidationError, match="complience"):
        jsonschema.validate(sop, schema)
