"""The files generated from the SOP schema: the published JSON schema and the SOP format reference."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from sopflow.schema import Sop
from sopflow.settings import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "sop_definitions" / "sop.schema.json"


def schema_text() -> str:
    schema = Sop.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sopflow SOP"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def generated() -> dict[Path, Callable[[], str]]:
    """Each generated file and the function that gives its text."""
    from sopflow.reference import DOC_FILE, reference_text  # the reference reads the checks; only load it here

    return {SCHEMA_FILE: schema_text, DOC_FILE: reference_text}


def write_all() -> list[Path]:
    """Write sop_definitions/sop.schema.json and docs/sop-format.md (`sopflow schema --write`); return them."""
    written = []
    for path, text in generated().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text(), encoding="utf-8")
        written.append(path)
    return written


def stale() -> list[Path]:
    """The generated files whose content differs from what the schema gives now."""
    return [path for path, text in generated().items()
            if not path.is_file() or path.read_text(encoding="utf-8") != text()]
