"""The JSON Schema: checked in, in sync with the models, and it agrees with the loader on the
example specs (valid) and on a few invalid ones (rejected), so an editor's squiggles are right."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sweepspec.load import load_spec
from sweepspec.schema import SCHEMA_ID, schema_path, schema_text, spec_schema
from sweepspec.spec.source import load_yaml

REPO = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO / "schemas" / "sweepspec-v1.json"
EXAMPLES = sorted(
    p
    for p in [*(REPO / "sweeps").glob("*.yaml"), *(REPO / "tests/data/valid").glob("*.yaml")]
    if not p.name.startswith("_")
)
INVALID = REPO / "tests" / "data" / "invalid"


@pytest.fixture(scope="module")
def validator() -> Draft202012Validator:
    schema = json.loads(CHECKED_IN.read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def test_checked_in_schema_is_up_to_date() -> None:
    assert CHECKED_IN.read_text(encoding="utf-8") == schema_text(), (
        "schemas/sweepspec-v1.json is stale; run `sweepspec schema --write`"
    )
    assert schema_path() == CHECKED_IN


def test_schema_header() -> None:
    schema = spec_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["sweepspec", "objective", "space"]


def test_every_field_is_described() -> None:
    """Descriptions become an editor's hover text: every property of every model has one."""
    schema = spec_schema()
    models = {"<root>": schema, **schema["$defs"]}

    def described(sub: dict[str, Any]) -> bool:
        # pydantic leaves out a field's description when it repeats the referenced model's
        ref = sub.get("$ref", "").removeprefix("#/$defs/")
        return bool(sub.get("description") or models.get(ref, {}).get("description"))

    missing = [
        f"{name}.{prop}"
        for name, model in models.items()
        for prop, sub in model.get("properties", {}).items()
        if not described(sub)
    ]
    assert not missing


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.relative_to(REPO).as_posix() for p in EXAMPLES])
def test_examples_validate_against_schema(path: Path, validator: Draft202012Validator) -> None:
    resolved = load_spec(path).resolved
    errors = [
        f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(resolved)
    ]
    assert not errors
    text = path.read_text(encoding="utf-8")
    if "${" not in text and "extends:" not in text:  # as an editor sees the file itself
        raw, _ = load_yaml(text, str(path))
        assert not list(validator.iter_errors(raw))


@pytest.mark.parametrize(
    "name",
    [
        "unknown_top_key",
        "unknown_nested_key",
        "unknown_scheduler",
        "two_distributions",
        "when_without_distribution",
        "num_samples_string",
        "version_type",
        "missing_version",
        "yes_is_not_bool",
        "empty_choice",
    ],
)
def test_invalid_specs_are_rejected_by_schema(name: str, validator: Draft202012Validator) -> None:
    data, _ = load_yaml((INVALID / f"{name}.yaml").read_bytes(), name)
    assert list(validator.iter_errors(data))


@pytest.mark.parametrize(
    ("snippet", "valid"),
    [
        ({"x": {"uniform": [0, 1], "step": 0.1}}, True),
        ({"g": {"a": {"choice": [1, 2]}, "b": 3}}, True),
        ({"lit": {"value": {"a": 1}}}, True),
        ({"fixed": [1, 2, 3]}, True),
        ({"g": {}}, True),
        ({"x": {"uniform": [0, 1], "choice": [1]}}, False),
        ({"x": {"when": "a > 1"}}, False),
        ({"x": {"int": [1, 2], "stepp": 1}}, False),
        ({"g": {"uniform": [0, 1], "extra": 1}}, False),
    ],
)
def test_space_nodes(snippet: dict[str, Any], valid: bool, validator: Draft202012Validator) -> None:
    spec = {
        "sweepspec": 1,
        "objective": {"function": "m:f", "metric": "loss", "mode": "min"},
        "space": snippet,
    }
    assert (not list(validator.iter_errors(spec))) is valid
