"""Validate plain data against :class:`Spec` and turn pydantic's errors into located problems.

pydantic's ``loc`` holds YAML keys and, in between, segments that are not keys (the tag of a
discriminated union, ``[key]``): we walk ``loc`` over the data and keep only real keys.
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

__all__ = ["allowed_keys", "validate_model"]


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
    same value; they are joined into one message ("... or ...")."""
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
        suffix = re.search(r", but got .*$", group[0].message)
        tail = suffix.group(0) if suffix else ""
        heads = [
            q.message[: len(q.message) - len(tail)]
            if tail and q.message.endswith(tail)
            else q.message
            for q in group
        ]
        out.append(
            Problem(" or ".join(heads) + tail, group[0].path, group[0].location, group[0].code)
        )
    return out


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
        return Problem(
            f"a parameter name is an identifier ([A-Za-z_][A-Za-z0-9_]*, no dots or dashes; "
            f"nest groups instead), but got {key!r}",
            _dotted(path),
            source.key(path) or where,
            "key-name",
        )
    if etype == "union_tag_invalid":
        return _bad_tag(err, path, node, source)
    return Problem(_message(err, path, node), _dotted(path), where, etype)


def _bad_tag(err: Any, path: KeyPath, node: Any, source: SourceMap) -> Problem:
    tag = err.get("ctx", {}).get("tag", "")
    expected = re.findall(r"'([^']*)'", err.get("ctx", {}).get("expected_tags", ""))
    what = path[-1] if path else "value"
    if tag == "<not a mapping>":
        return Problem(
            f"{what} is a mapping with a `type` key", _dotted(path), source.locate(path), "type"
        )
    if tag == "<missing>":
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
        return f"{msg}, but got a {_kind(node)}"
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
