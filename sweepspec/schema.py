"""The JSON Schema of the spec, generated from the models.

The package ships a copy (``sweepspec/schemas/sweepspec-v1.json``, package data), so that
``sweepspec schema`` and ``--check`` work from a wheel; a source checkout also keeps one under
``schemas/`` for the ``# yaml-language-server: $schema=../schemas/sweepspec-v1.json`` modelines of
``sweeps/``. Both are the same text, and tests keep them in sync with the models.

The schema is what an editor sees *before* sweepspec reads the file, so it says what the reader
accepts there, beyond the models (which validate the resolved spec):

- ``${...}`` (an OmegaConf interpolation of the whole value) wherever a number or a boolean goes;
- a spec with ``extends:`` may leave out what its base gives: nothing is required in it, and a
  scheduler or backend section may omit its ``type`` (it merges into the base's).
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from sweepspec.spec.root import Spec

__all__ = [
    "INTERPOLATION_PATTERN",
    "SCHEMA_FILE",
    "SCHEMA_ID",
    "schema_path",
    "schema_text",
    "shipped_schema_path",
    "spec_schema",
]

SCHEMA_FILE = "sweepspec-v1.json"
SCHEMA_ID = f"https://sweepspec.dev/schemas/{SCHEMA_FILE}"

#: One OmegaConf interpolation as the whole value (``${objective.config.epochs}``): the reader
#: resolves it before validation, so it stands for a value of any type.
INTERPOLATION_PATTERN = r"^\$\{[^${}]+\}$"
_INTERPOLATION = "Interpolation"
_INTERPOLATION_REF = {"$ref": f"#/$defs/{_INTERPOLATION}"}
# "a string that matches" said as "no other type" (the same set of values): an editor then
# reports a float where an integer goes as 'Expected "integer"', not 'Expected "integer | string"'
_INTERPOLATION_DEF = {
    "not": {"type": ["null", "boolean", "number", "array", "object"]},
    "pattern": INTERPOLATION_PATTERN,
    "description": "An interpolation of the whole value, e.g. ${objective.config.epochs}: "
    "resolved before the spec is checked.",
}

_SCALARS = ("integer", "number", "boolean")
_ANNOTATIONS = ("title", "description", "default", "examples")
# keywords whose value is a schema / a mapping of names to schemas / a list of schemas
_SCHEMA_KEYS = ("items", "additionalProperties", "not", "if", "then", "else", "propertyNames")
_SCHEMA_MAPS = ("properties", "patternProperties", "$defs")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def spec_schema() -> dict[str, Any]:
    """The schema: the models' own, with interpolations, and relaxed for ``extends:``."""
    schema = _with_interpolations(Spec.model_json_schema(mode="validation"))
    defs: dict[str, Any] = schema.pop("$defs")
    defs[_INTERPOLATION] = _INTERPOLATION_DEF
    partial = _partial_names(defs)
    for name in partial:
        defs[partial[name]] = _partial(defs[name], partial)
    strict_root = {**schema, "$defs": defs}
    root = _partial(schema, partial)
    # what a spec without `extends:` must also satisfy: the required keys, strict sections
    strict = {
        key: value
        for key, value in strict_root["properties"].items()
        if value != root["properties"][key]
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        **root,
        "if": {"required": ["extends"], "properties": {"extends": {"type": "string"}}},
        "else": {"required": schema["required"], "properties": strict},
        "$defs": dict(sorted(defs.items())),
    }


def schema_text() -> str:
    return json.dumps(spec_schema(), indent=2, sort_keys=False) + "\n"


def shipped_schema_path() -> Path:
    """The copy inside the package (``sweepspec/schemas/``), installed with it."""
    return Path(__file__).resolve().parent / "schemas" / SCHEMA_FILE


def schema_path() -> Path | None:
    """``schemas/sweepspec-v1.json`` of the source checkout sweepspec runs from, or None when it
    runs from an installed package (no checkout around it)."""
    root = Path(__file__).resolve().parent.parent
    try:
        pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None
    if 'name = "sweepspec"' not in pyproject:
        return None
    return root / "schemas" / SCHEMA_FILE


def _children(node: dict[str, Any], change: Any) -> dict[str, Any]:
    """``node`` with ``change(schema, in_union)`` applied to each of its subschemas."""
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _SCHEMA_KEYS and isinstance(value, dict):
            out[key] = change(value, False)
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {name: change(sub, False) for name, sub in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [change(sub, key != "allOf") for sub in value]
        else:
            out[key] = value
    return out


def _is_scalar(node: dict[str, Any]) -> bool:
    return node.get("type") in _SCALARS and "const" not in node and "enum" not in node


def _is_any_string(node: dict[str, Any]) -> bool:
    return node.get("type") == "string" and not set(node) - {"type", *_ANNOTATIONS}


def _with_interpolations(node: dict[str, Any], in_union: bool = False) -> dict[str, Any]:
    """Every number or boolean of ``node`` also takes ``${...}``: a union that holds one gains
    an interpolation member (unless it takes any string already); a lone one becomes such a
    union, its annotations (description, default) kept outside."""
    node = _children(node, _with_interpolations)
    for key in ("anyOf", "oneOf"):
        members = node.get(key)
        if (
            isinstance(members, list)
            and any(_is_scalar(m) for m in members)
            and not any(_is_any_string(m) for m in members)
        ):
            node[key] = [*members, _INTERPOLATION_REF]
    if _is_scalar(node) and not in_union:
        inner = {k: v for k, v in node.items() if k not in _ANNOTATIONS}
        outer = {k: v for k, v in node.items() if k in _ANNOTATIONS}
        return {"anyOf": [inner, _INTERPOLATION_REF], **outer}
    return node


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix("#/$defs/")} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _strict_only(node: Any) -> bool:
    """Whether ``node`` itself (not through references) requires a key or picks one of a
    union: what a section that merges into a base's may leave to the base."""
    if isinstance(node, dict):
        return "required" in node or "oneOf" in node or any(map(_strict_only, node.values()))
    if isinstance(node, list):
        return any(map(_strict_only, node))
    return False


def _partial_names(defs: dict[str, Any]) -> dict[str, str]:
    """The definitions that differ in a spec with ``extends:`` (they require keys, pick one of
    a union, or refer to such a definition), each with the name of its relaxed copy."""
    changed = {name for name, sub in defs.items() if _strict_only(sub)}
    while True:
        more = {name for name, sub in defs.items() if _refs(sub) & changed} - changed
        if not more:
            return {name: f"Partial{name}" for name in sorted(changed)}
        changed |= more


def _partial(node: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    """``node`` as a section merged over a base's: no key required, a union's members may
    overlap (``anyOf``), references to the relaxed copies."""

    def relax(sub: dict[str, Any], _in_union: bool) -> dict[str, Any]:
        return _partial(sub, names)

    out = _children(copy.deepcopy(node), relax)
    out.pop("required", None)
    if "oneOf" in out:
        out["anyOf"] = out.pop("oneOf")
    ref = out.get("$ref", "").removeprefix("#/$defs/")
    if ref in names:
        out["$ref"] = f"#/$defs/{names[ref]}"
    return out
