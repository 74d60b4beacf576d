"""The published JSON schema is current, and the SOPs in sop_definitions/ are valid."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from sopflow import cli
from sopflow.catalog import validate
from sopflow.loader import load_sop
from sopflow.schema_file import SCHEMA_FILE, schema_text

SOP_DIR = Path(__file__).resolve().parents[2] / "sop_definitions"


def test_schema_file_is_published_in_sop_definitions() -> None:
    assert SCHEMA_FILE == SOP_DIR / "sop.schema.json"


def test_published_schema_is_current() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), (
        "sop_definitions/sop.schema.json is stale; run `sopflow schema --write`"
    )


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
