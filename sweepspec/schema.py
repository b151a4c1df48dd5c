"""The JSON Schema of the spec, generated from the models (checked in under schemas/)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sweepspec.spec.root import Spec

__all__ = ["SCHEMA_ID", "schema_path", "schema_text", "spec_schema"]

SCHEMA_ID = "https://sweepspec.dev/schemas/sweepspec-v1.json"


def spec_schema() -> dict[str, Any]:
    schema = Spec.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **schema,
    }


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=False) + "\n"


def schema_path() -> Path:
    """``schemas/sweepspec-v1.json`` of the source checkout."""
    return Path(__file__).resolve().parent.parent / "schemas" / "sweepspec-v1.json"
