"""Validate plain data against :class:`Spec` and turn pydantic's errors into located problems.

pydantic's ``loc`` holds YAML keys and, in between, segments that are not keys (the tag of a
discriminated union, ``[key]``): we walk ``loc`` over the data and keep only real keys.

Every problem carries a stable sweepspec code (:data:`CODES`), never pydantic's internal
error type: tools that read ``validate --format json`` must not break when pydantic renames
one.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

from pydantic import BaseModel, ValidationError

from sweepspec.errors import KeyPath, Problem, SweepspecError
from sweepspec.spec.root import Spec
from sweepspec.spec.source import SourceMap
from sweepspec.suggest import did_you_mean

__all__ = ["CODES", "allowed_keys", "code_for", "validate_model"]

#: The codes a schema problem carries, with what they mean (docs/running.md lists them).
CODES = {
    "unknown-key": "a key the spec language does not have here (with a did-you-mean)",
    "missing-key": "a required key is absent",
    "wrong-type": "a value of the wrong type (a string where a number goes, ...)",
    "out-of-range": "a number outside its bounds (>= 1, finite, ...)",
    "wrong-length": "a list (or text) too short or too long",
    "invalid-choice": "a value that is not one of the allowed ones (with a did-you-mean)",
    "invalid-value": "a value that breaks a rule of its key (low < high, a duration, ...)",
    "unknown-type": "a `type:` that names no scheduler, backend, ... (with a did-you-mean)",
    "key-name": "a key that is not a valid name here (a parameter name, a comparison)",
}

#: pydantic's error types that are not of their kind by their name's ending (``_type``,
#: ``_parsing``): every other type is ``invalid-value``
_CODE_OF = {
    "extra_forbidden": "unknown-key",
    "missing": "missing-key",
    "int_from_float": "wrong-type",
    "int_parsing_size": "out-of-range",
    "none_required": "wrong-type",
    "is_instance_of": "wrong-type",
    "is_subclass_of": "wrong-type",
    "greater_than": "out-of-range",
    "greater_than_equal": "out-of-range",
    "less_than": "out-of-range",
    "less_than_equal": "out-of-range",
    "multiple_of": "out-of-range",
    "finite_number": "out-of-range",
    "too_short": "wrong-length",
    "too_long": "wrong-length",
    "string_too_short": "wrong-length",
    "string_too_long": "wrong-length",
    "literal_error": "invalid-choice",
    "enum": "invalid-choice",
    "union_tag_invalid": "unknown-type",
    "union_tag_not_found": "missing-key",
}


def code_for(error_type: str) -> str:
    """The sweepspec code (:data:`CODES`) of a pydantic error type."""
    if error_type in _CODE_OF:
        return _CODE_OF[error_type]
    if error_type.endswith(("_type", "_parsing")):
        return "wrong-type"
    return "invalid-value"


_SECRET_KEYS = ("storage", "tracking_uri")


def validate_model(data: dict[str, Any], source: SourceMap) -> Spec:
    """The Spec for ``data``, or a SweepspecError with every problem located."""
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        problems = [_problem(err, data, source) for err in exc.errors(include_input=False)]
        raise SweepspecError(_dedupe(problems)) from None


def _dedupe(problems: list[Problem]) -> list[Problem]:
    """One problem per key path: the branches of a union (``int | 'auto'``) each report the
    same value; they are joined into one message ("... or ..."), which says what it got once."""
    by_path: dict[str, list[Problem]] = {}
    for p in problems:
        group = by_path.setdefault(p.path, [])
        if all(q.message != p.message for q in group):
            group.append(p)
    out = []
    for group in by_path.values():
        if len(group) == 1 or any(q.code in ("unknown-key", "missing-key") for q in group):
            out.extend(group)
            continue
        first = group[0]
        out.append(
            Problem(_joined([q.message for q in group]), first.path, first.location, first.code)
        )
    return out


_GOT = ", but got "
_SHOULD = "input should be "


def _joined(messages: list[str]) -> str:
    """``messages`` about one value as one: what must hold, joined with "or", then what was
    got, once (the longest of the branches' tails: the one with a did-you-mean)."""
    heads: list[str] = []
    tails: list[str] = []
    for message in messages:
        head, sep, tail = message.partition(_GOT)
        if head not in heads:
            heads.append(head)
        if sep:
            tails.append(tail)
    if all(h.startswith(_SHOULD) for h in heads):  # "input should be an integer or 'auto'"
        heads = [heads[0], *(h[len(_SHOULD) :] for h in heads[1:])]
    text = " or ".join(heads)
    return f"{text}{_GOT}{max(tails, key=len)}" if tails else text


def _data_path(data: Any, loc: tuple[Any, ...]) -> tuple[KeyPath, Any, bool]:
    """The longest prefix of ``loc`` that exists in ``data`` (skipping non-key segments)."""
    path: list[str | int] = []
    node = data
    complete = True
    for seg in loc:
        if isinstance(node, dict) and isinstance(seg, str) and seg in node:  # noqa: SIM114 (separate for mypy narrowing)
            path.append(seg)
            node = node[seg]
        elif isinstance(node, list) and isinstance(seg, int) and 0 <= seg < len(node):
            path.append(seg)
            node = node[seg]
        elif _is_key_like(seg):
            complete = False
            break
    return tuple(path), node, complete


def _is_key_like(seg: Any) -> bool:
    if isinstance(seg, int):
        return True
    return bool(re.fullmatch(r"[A-Za-z_][\w]*", seg)) and seg not in _TAGS


_TAGS = {"fifo", "asha", "hyperband", "median", "pbt", "optuna", "ray", "group", "fixed"}


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def _problem(err: Any, data: dict[str, Any], source: SourceMap) -> Problem:
    loc = tuple(err["loc"])
    etype = err["type"]
    path, node, _ = _data_path(data, loc)
    where = source.locate(path)
    if etype == "extra_forbidden":
        key = path[-1] if path else loc[-1]
        allowed = allowed_keys(loc[:-1], data)
        hint = did_you_mean(str(key), allowed) if allowed else ""
        where = source.key(path) or where
        return Problem(f"unknown key {key!r}{hint}", _dotted(path), where, "unknown-key")
    if etype == "missing":
        missing = loc[-1]
        return Problem(
            f"missing required key {missing!r}", _dotted((*path, missing)), where, "missing-key"
        )
    if loc and loc[-1] == "[key]":
        key = path[-1] if path else loc[-2]
        if etype == "literal_error":  # a key from a fixed set (a threshold's comparison)
            msg = re.sub(r"^Input should be ", "", err["msg"])
            return Problem(
                f"a key here is {msg}, but got {_shown(key)}",
                _dotted(path),
                source.key(path) or where,
                "key-name",
            )
        return Problem(
            f"a parameter name is an identifier ([A-Za-z_][A-Za-z0-9_]*, no dots or dashes; "
            f"nest groups instead), but got {key!r}",
            _dotted(path),
            source.key(path) or where,
            "key-name",
        )
    if etype == "union_tag_invalid":
        return _bad_tag(err, path, node, source)
    return Problem(_message(err, path, node), _dotted(path), where, code_for(etype))


def _bad_tag(err: Any, path: KeyPath, node: Any, source: SourceMap) -> Problem:
    tag = err.get("ctx", {}).get("tag", "")
    expected = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected_tags", ""))
    what = path[-1] if path else "value"
    if tag == "<not a mapping>":
        return Problem(
            f"{what} is a mapping with a `type` key", _dotted(path), source.locate(path), "type"
        )
    if tag == "<missing>":
        near = [k for k in node if did_you_mean(str(k), ["type"])] if isinstance(node, dict) else []
        if near:  # `tpye: asha`: the misspelt key, where it is
            key = near[0]
            return Problem(
                f"unknown key {key!r}{did_you_mean(str(key), ['type'])}; {what} needs a type: "
                f"one of {', '.join(expected)}",
                _dotted((*path, key)),
                source.key((*path, key)) or source.locate(path),
                "unknown-key",
            )
        return Problem(
            f"{what} needs a type: one of {', '.join(expected)}",
            _dotted((*path, "type")),
            source.locate(path),
            "missing-key",
        )
    return Problem(
        f"unknown {what} type {tag!r}{did_you_mean(tag, expected)}; one of {', '.join(expected)}",
        _dotted((*path, "type")),
        source.locate((*path, "type")),
        "unknown-type",
    )


def _message(err: Any, path: KeyPath, node: Any) -> str:
    msg: str = err["msg"]
    if err["type"] in ("value_error", "assertion_error"):
        return re.sub(r"^(Value|Assertion) error, ", "", msg)
    msg = msg[0].lower() + msg[1:] if msg else msg
    msg = re.sub(r" after validation, not \d+$", "", msg)  # pydantic's wording for list lengths
    secret = any(k in path for k in _SECRET_KEYS)
    if secret or (isinstance(node, dict | list) and len(repr(node)) > 60):
        kind = _kind(node)
        return f"{msg}, but got {'an' if kind[0] in 'aeiou' else 'a'} {kind}"
    if err["type"] == "literal_error" and isinstance(node, str):
        expected = re.findall(r"'([^']*)'", msg)
        return f"{msg}, but got {_shown(node)}{did_you_mean(node, expected)}"
    return f"{msg}, but got {_shown(node)}"


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _kind(value: Any) -> str:
    return {dict: "mapping", list: "list", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


def allowed_keys(loc: tuple[Any, ...], data: dict[str, Any] | None = None) -> list[str]:
    """The keys the model allows at ``loc`` (for "did you mean"); empty when unknown."""
    tp: Any = Spec
    for seg in loc:
        tp = _step(tp, seg)
        if tp is None:
            return []
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return list(tp.model_fields)
    return []


def _unwrap(tp: Any) -> Any:
    while True:
        if (
            isinstance(tp, typing.TypeAliasType if hasattr(typing, "TypeAliasType") else ())
            or type(tp).__name__ == "TypeAliasType"
        ):
            tp = tp.__value__
        elif typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        else:
            return tp


def _union_members(tp: Any) -> list[tuple[Any, str | None]]:
    out = []
    for arg in typing.get_args(tp):
        tag = None
        if typing.get_origin(arg) is typing.Annotated:
            for meta in typing.get_args(arg)[1:]:
                tag = getattr(meta, "tag", tag)
        out.append((arg, tag))
    return out


def _step(tp: Any, seg: Any) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        members = _union_members(tp)
        for arg, tag in members:
            if tag is not None and tag == seg:
                return arg
        models = [a for a, _ in members if _is_model(_unwrap(a))]
        for arg in models:
            nxt = _step(arg, seg)
            if nxt is not None:
                return nxt
        return None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(seg) if isinstance(seg, str) else None
        return field.annotation if field is not None else None
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0]
    return None


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)
