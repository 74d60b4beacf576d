"""The published JSON schema of SOP files, generated from the pydantic model."""

from __future__ import annotations

import json

from sopflow.schema import Sop
from sopflow.settings import PROJECT_ROOT

SCHEMA_FILE = PROJECT_ROOT / "sop_definitions" / "sop.schema.json"


def schema_text() -> str:
    schema = Sop.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "sopflow SOP"
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"
