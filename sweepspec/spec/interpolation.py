"""Interpolation in a spec (``${objective.config.epochs}``), checked before OmegaConf resolves it.

Only references to other keys are allowed (absolute ``${a.b}``, ``${a.list[0]}``, relative
``${.sibling}``, ``${..uncle}``). No resolver runs while a spec is read: ``${oc.env:...}`` is
kept literal in ``storage`` and ``tracking.mlflow.tracking_uri`` (credentials, resolved only
when connecting) and is an error anywhere else, like every other resolver, and a resolver's name
or a reference built from another interpolation (``${${x}:Y}``) is refused outright: the
environment is read only through the documented form. ``\\${...}`` is a literal ``${...}``.

Before anything is resolved, the size of the result is worked out from the references (each
subtree once): a reference copies what it names, so a few lines could otherwise multiply into
millions of nodes or gigabytes of text. More than ``MAX_NODES`` nodes, ``MAX_CHARS`` characters
or a chain of ``MAX_CHAIN`` references is an error located at the string that goes past it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sweepspec.errors import KeyPath, Problem, SweepspecError
from sweepspec.spec.source import MAX_BYTES, MAX_NODES, SourceMap

__all__ = [
    "ENV_KEYS",
    "MAX_CHAIN",
    "MAX_CHARS",
    "Ref",
    "check_interpolations",
    "escape_env",
    "has_interpolation",
    "parse",
]

#: Where ``${oc.env:NAME}`` may stand (connection strings): kept literal, read when connecting.
ENV_KEYS: frozenset[KeyPath] = frozenset({("storage",), ("tracking", "mlflow", "tracking_uri")})
MAX_CHARS = 4 * MAX_BYTES
MAX_CHAIN = 100

_ENV = re.compile(r"\s*oc\.env\s*:\s*[A-Za-z_][A-Za-z0-9_]*\s*(,[^{}$]*)?")
_REF = re.compile(r"\s*(\.*)([A-Za-z0-9_\-]+(?:\.[A-Za-z0-9_\-]+|\[\d+\])*)?\s*")
_SEGMENT = re.compile(r"\.?([A-Za-z0-9_\-]+)|\[(\d+)\]")


@dataclass(frozen=True)
class Ref:
    """One ``${...}`` in a string: where it is (``start``/``end`` of the whole ``${...}``),
    its body, and for a reference how many levels it climbs (``dots``) and its key path."""

    start: int
    end: int
    body: str
    dots: int = 0
    path: tuple[str, ...] = ()
    env: bool = False


class _Bad(Exception):
    def __init__(self, message: str, code: str = "interpolation") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def parse(text: str, *, env_allowed: bool = False) -> list[Ref]:
    """The interpolations of ``text``, or :class:`_Bad` naming what is not allowed."""
    out: list[Ref] = []
    i = 0
    while True:
        i = text.find("${", i)
        if i < 0:
            return out
        backslashes = len(text[:i]) - len(text[:i].rstrip("\\"))
        if backslashes % 2:  # \${ is a literal ${
            i += 2
            continue
        close = text.find("}", i + 2)
        inner = text.find("${", i + 2)
        if close < 0:
            raise _Bad(f"unclosed interpolation at column {i + 1}")
        if 0 <= inner < close:
            raise _Bad(
                f"an interpolation inside an interpolation (at column {inner + 1}) is not "
                "allowed; only references such as ${objective.config.total_timesteps} are"
            )
        body = text[i + 2 : close]
        out.append(_ref(body, i, close + 1, env_allowed))
        i = close + 1


def _ref(body: str, start: int, end: int, env_allowed: bool) -> Ref:
    if ":" in body:
        name = body.split(":", 1)[0].strip()
        if name == "oc.env" and env_allowed:
            if not _ENV.fullmatch(body):
                raise _Bad(
                    "write an environment variable as ${oc.env:NAME} or ${oc.env:NAME,default}"
                )
            return Ref(start, end, body, env=True)
        if name == "oc.env":
            raise _Bad(
                "${oc.env:...} is allowed only in storage and tracking.mlflow.tracking_uri "
                "(credentials); pass other values as command-line overrides"
            )
        raise _Bad(
            f"the resolver {name!r} is not allowed; only references such as "
            "${objective.config.total_timesteps} are"
        )
    m = _REF.fullmatch(body)
    if m is None or not m.group(2):
        raise _Bad(
            f"${{{body}}} is not a reference to a key; write ${{section.key}}, "
            "${section.list[0]} or ${.sibling}"
        )
    path = tuple(a or b for a, b in _SEGMENT.findall(m.group(2)))
    return Ref(start, end, body, dots=len(m.group(1)), path=path)


def has_interpolation(data: Any) -> bool:
    if isinstance(data, dict):
        return any(has_interpolation(v) for v in data.values())
    if isinstance(data, list):
        return any(has_interpolation(v) for v in data)
    return isinstance(data, str) and "${" in data


def _strings(data: Any, path: KeyPath = ()) -> Iterator[tuple[KeyPath, str]]:
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _strings(v, (*path, k))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _strings(v, (*path, i))
    elif isinstance(data, str) and "${" in data:
        yield path, data


def _dotted(path: KeyPath) -> str:
    return ".".join(str(p) for p in path)


def check_interpolations(data: dict[str, Any], source: SourceMap) -> None:
    """Every interpolation of ``data`` is an allowed one, and resolving them stays within the
    limits; else a :class:`SweepspecError` with every problem located."""
    problems: list[Problem] = []
    for path, text in _strings(data):
        try:
            parse(text, env_allowed=path in ENV_KEYS)
        except _Bad as bad:
            problems.append(Problem(bad.message, _dotted(path), source.locate(path), bad.code))
    if problems:
        raise SweepspecError(problems)
    try:
        _Sizes(data).total()
    except _Over as over:
        raise SweepspecError(
            Problem(over.message, _dotted(over.path), source.locate(over.path), "too-large")
        ) from None


def escape_env(data: Any, path: KeyPath = ()) -> Any:
    """``data`` with every ``${oc.env:...}`` of a connection string escaped, so that OmegaConf
    keeps it literal (references beside it still resolve)."""
    if isinstance(data, dict):
        return {k: escape_env(v, (*path, k)) for k, v in data.items()}
    if isinstance(data, list):
        return [escape_env(v, (*path, i)) for i, v in enumerate(data)]
    if isinstance(data, str) and path in ENV_KEYS and "${" in data:
        refs = [r for r in parse(data, env_allowed=True) if r.env]
        for r in reversed(refs):
            data = data[: r.start] + "\\" + data[r.start :]
        return data
    return data


class _Over(Exception):
    def __init__(self, message: str, path: KeyPath) -> None:
        super().__init__(message)
        self.message = message
        self.path = path


class _Missing(Exception):
    """A reference to a key that does not exist: OmegaConf reports it, located."""


class _Sizes:
    """The size of ``data`` once every reference is resolved, in nodes and characters, each
    subtree computed once."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.memo: dict[KeyPath, tuple[int, int]] = {}
        self.active: list[KeyPath] = []

    def total(self) -> tuple[int, int]:
        return self.size(())

    def _node(self, path: KeyPath) -> Any:
        node: Any = self.data
        for i, part in enumerate(path):
            node = self._follow(node, path[:i])
            index = int(part) if isinstance(part, str) and part.isdigit() else part
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(index, int) and 0 <= index < len(node):
                node = node[index]
            else:
                raise _Missing
        return node

    def _follow(self, node: Any, path: KeyPath) -> Any:
        """Through a string that is one whole reference, to what it names."""
        for _ in range(MAX_CHAIN):
            if not isinstance(node, str) or "${" not in node:
                return node
            refs = parse(node, env_allowed=path in ENV_KEYS)
            if len(refs) != 1 or refs[0].env or (refs[0].start, refs[0].end) != (0, len(node)):
                return node
            path = self._target(path, refs[0])
            node = self._node(path)
        raise _Over(f"a chain of more than {MAX_CHAIN} references", path)

    @staticmethod
    def _target(path: KeyPath, ref: Ref) -> KeyPath:
        base = path[: max(0, len(path) - ref.dots)] if ref.dots else ()
        return (*base, *ref.path)

    def size(self, path: KeyPath) -> tuple[int, int]:
        known = self.memo.get(path)
        if known is not None:
            return known
        if path in self.active:
            raise _Over("an interpolation refers to itself (a loop of references)", path)
        if len(self.active) > MAX_CHAIN:
            raise _Over(f"a chain of more than {MAX_CHAIN} references", path)
        self.active.append(path)
        try:
            result = self._measure(path)
        finally:
            self.active.pop()
        nodes, chars = result
        if nodes > MAX_NODES or chars > MAX_CHARS:
            raise _Over(
                f"interpolation makes the spec too large here ({nodes} nodes and {chars} "
                f"characters once resolved; at most {MAX_NODES} nodes and {MAX_CHARS} "
                "characters)",
                path,
            )
        self.memo[path] = result
        return result

    def _measure(self, path: KeyPath) -> tuple[int, int]:
        try:
            node = self._node(path)
        except _Missing:
            return (1, 0)
        if isinstance(node, dict):
            nodes, chars = 1, 0
            for key in node:
                n, c = self.size((*path, key))
                nodes, chars = nodes + n, chars + c + len(str(key))
            return nodes, chars
        if isinstance(node, list):
            nodes, chars = 1, 0
            for i in range(len(node)):
                n, c = self.size((*path, i))
                nodes, chars = nodes + n, chars + c
            return nodes, chars
        if not isinstance(node, str):
            return (1, len(repr(node)))
        if "${" not in node:
            return (1, len(node))
        refs = parse(node, env_allowed=path in ENV_KEYS)
        refs = [r for r in refs if not r.env]
        if len(refs) == 1 and (refs[0].start, refs[0].end) == (0, len(node)):
            return self.size(self._target(path, refs[0]))  # the whole node is copied
        chars = len(node) - sum(r.end - r.start for r in refs)
        for r in refs:  # each is written into the text
            n, c = self.size(self._target(path, r))
            chars += c + 2 * n
        return (1, chars)
