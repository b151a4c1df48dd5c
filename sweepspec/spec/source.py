"""Safe YAML reading: plain data plus a map of where every key and value was written.

PyYAML only *composes* the text into a node tree here, with a YAML 1.2 core-schema resolver;
its constructors never run, so no tag can build a Python object or execute anything. Walking
the node tree ourselves yields ``dict``/``list``/``str``/``int``/``float``/``bool``/``None``
and a :class:`SourceMap` of 1-based positions by key path, while collecting every duplicate
key, tag, non-string key and merge key, and bounding nesting depth and alias expansion.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from yaml.composer import Composer
from yaml.error import Mark, MarkedYAMLError
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent, StreamEndEvent
from yaml.nodes import CollectionNode, MappingNode, Node, ScalarNode, SequenceNode
from yaml.parser import Parser
from yaml.reader import Reader, ReaderError
from yaml.resolver import BaseResolver
from yaml.scanner import Scanner

from sweepspec.errors import KeyPath, Location, Problem, SweepspecError

__all__ = ["MAX_BYTES", "MAX_DEPTH", "MAX_NODES", "SourceMap", "load_yaml"]

MAX_BYTES = 1_000_000
MAX_DEPTH = 64
MAX_NODES = 500_000
ALIAS_SEEN = -1  # a key of _expanded_size's cache: an alias was met


try:
    from yaml.cyaml import CParser as _CParser  # type: ignore[attr-defined]  # libyaml's

    CParser: Any = _CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    CParser = None

# --------------------------------------------------------------------------- scalars

_YAML_TAG = "tag:yaml.org,2002:"
_STR, _INT, _FLOAT, _BOOL, _NULL, _SEQ, _MAP = (
    _YAML_TAG + name for name in ("str", "int", "float", "bool", "null", "seq", "map")
)
_SCALAR_TAGS = frozenset({_STR, _INT, _FLOAT, _BOOL, _NULL})

_INT_RE = re.compile(r"[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+")
_FLOAT_RE = re.compile(
    r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)"
)
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})


def _implicit_tag(text: str) -> str:
    """The YAML 1.2 core-schema tag of a plain (unquoted, untagged) scalar."""
    if text in _NULLS:
        return _NULL
    if text in _BOOLS:
        return _BOOL
    if _INT_RE.fullmatch(text):
        return _INT
    if _FLOAT_RE.fullmatch(text):
        return _FLOAT
    return _STR


def _scalar_value(tag: str, text: str) -> Any:
    """The value of a scalar with a core-schema tag; ``ValueError`` if the text does not fit it."""
    if tag == _STR:
        return text
    if tag == _NULL and text in _NULLS:
        return None
    if tag == _BOOL and text in _BOOLS:
        return _BOOLS[text]
    if tag == _INT and _INT_RE.fullmatch(text):
        base = {"0o": 8, "0x": 16}.get(text[:2], 10)
        return int(text[2:] if base != 10 else text, base)  # over 4300 digits: ValueError
    if tag == _FLOAT and _FLOAT_RE.fullmatch(text):
        special = text.lstrip("+-").lower()
        if special == ".nan":
            return math.nan
        if special == ".inf":
            return -math.inf if text.startswith("-") else math.inf
        return float(text)
    raise ValueError(text)


def _short_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_YAML_TAG) if tag.startswith(_YAML_TAG) else tag


def _dotted(path: KeyPath) -> str:
    return ".".join(str(piece) for piece in path)


def _location(file: str, mark: Mark | None) -> Location:
    if mark is None:
        return Location(file, 1, 1)
    return Location(file, mark.line + 1, mark.column + 1)


# --------------------------------------------------------------------------- source map


@dataclass(frozen=True)
class _Entry:
    key: Location
    value: Location
    block: bool  # the value is a block mapping/sequence: errors about it point at its key


class SourceMap:
    """Positions of keys and values of one YAML document, by key path (str keys / int indexes)."""

    def __init__(self, file: str, entries: Mapping[KeyPath, _Entry] | None = None) -> None:
        self.file = file
        self._entries: dict[KeyPath, _Entry] = dict(entries or {})

    def __repr__(self) -> str:
        return f"SourceMap({self.file!r}, {len(self._entries)} paths)"

    def key(self, path: KeyPath) -> Location | None:
        """Where the mapping key (or sequence item) at ``path`` starts."""
        entry = self._entries.get(tuple(path))
        return entry.key if entry else None

    def value(self, path: KeyPath) -> Location | None:
        """Where the value at ``path`` starts."""
        entry = self._entries.get(tuple(path))
        return entry.value if entry else None

    def locate(self, path: KeyPath) -> Location:
        """The best place for an error about ``path``.

        A scalar or flow (``{...}``/``[...]``) value's own position, a block collection's key;
        for a path that does not exist, its nearest existing ancestor (the root: line 1, col 1).
        """
        path = tuple(path)
        for end in range(len(path), -1, -1):
            entry = self._entries.get(path[:end])
            if entry is not None:
                return entry.key if entry.block or end == 0 else entry.value
        return Location(self.file, 1, 1)

    def paths(self) -> Iterable[KeyPath]:
        """Every known path, in document order (the root ``()`` first when the document has one)."""
        return list(self._entries)

    def merged(self, other: SourceMap, prefix: KeyPath = ()) -> SourceMap:
        """A new map: ``other``'s entries (re-rooted under ``prefix``) override this one's."""
        entries = dict(self._entries)
        for path, entry in other._entries.items():
            entries[(*prefix, *path)] = entry
        return SourceMap(self.file, entries)

    @staticmethod
    def single(location: Location, paths: Iterable[KeyPath]) -> SourceMap:
        """A map with every one of ``paths`` at ``location`` (e.g. a command-line override)."""
        entry = _Entry(location, location, block=False)
        return SourceMap(location.file, {tuple(path): entry for path in paths})


# --------------------------------------------------------------------------- composing


class _Stop(Exception):
    """Composing cannot go on; ``problem`` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.message)
        self.problem = problem


class _AliasNode(Node):
    """Where an alias (``*name``) was written; ``value`` is the anchored node it stands for."""

    id = "alias"


class _CoreResolver(BaseResolver):
    """Plain scalars resolve by the YAML 1.2 core schema: no ``yes``/``on``/dates/``1:30``."""

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            return _implicit_tag(value) if implicit[0] else _STR
        return _SEQ if kind is SequenceNode else _MAP


_LINE_END = "\0\r\n\x85\u2028\u2029"


class _Composing(Composer, _CoreResolver):
    """PyYAML's composer with bounded nesting, key paths and aliases kept as such; the events
    come from PyYAML's pure-Python parser (:class:`_Loader`) or from libyaml's
    (:class:`_FastLoader`)."""

    file: str

    if TYPE_CHECKING:  # provided by PyYAML's Parser or libyaml's CParser

        def peek_event(self) -> Any: ...
        def get_event(self) -> Any: ...
        def check_event(self, *choices: Any) -> bool: ...

    def _start(self, file: str) -> None:
        Composer.__init__(self)
        _CoreResolver.__init__(self)
        self.file = file
        self.path: list[str | int] = []
        self.open_collections = 0
        self.upcoming: Callable[[], Any] = self.peek_event  # typed handles on PyYAML's parser
        self.take: Callable[[], Any] = self.get_event

    def _too_deep(self, mark: Mark) -> Problem:
        where = _location(self.file, mark)
        message = f"nesting deeper than {MAX_DEPTH} levels"
        return Problem(message, _dotted(tuple(self.path)), where, "too-deep")

    def compose_single(self) -> Node | None:
        """The one document's root node (``None`` for an empty stream)."""
        self.take()  # stream start
        if self.check_event(StreamEndEvent):
            return None
        node = self.compose_document()
        if not self.check_event(StreamEndEvent):
            where = _location(self.file, self.upcoming().start_mark)
            message = "a spec is one YAML document, but this file has several"
            raise _Stop(Problem(message, "", where, "multi-document"))
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        if self.check_event(AliasEvent):
            event = self.upcoming()
            if event.anchor in self.anchors:  # else PyYAML reports the undefined alias
                self.take()
                target = self.anchors[event.anchor]
                return _AliasNode(target.tag, target, event.start_mark, event.end_mark)
        if parent is not None:
            self.path.append(index if isinstance(index, int) else _key_text(index))
        event = self.upcoming()
        if isinstance(event, ScalarEvent) and event.tag == "!":
            event.implicit = (False, True)  # the non-specific tag: a string (PyYAML resolves it)
        is_collection = self.check_event(CollectionStartEvent)
        if is_collection and self.open_collections >= MAX_DEPTH:
            raise _Stop(self._too_deep(self.upcoming().start_mark))
        self.open_collections += is_collection
        node = super().compose_node(parent, index)
        self.open_collections -= is_collection
        if parent is not None:
            self.path.pop()
        return node


class _Loader(Reader, Scanner, Parser, _Composing):
    """PyYAML's reader, scanner, parser and composer; no constructor. Nesting is bounded."""

    def __init__(self, text: str, file: str) -> None:
        Reader.__init__(self, text)
        Scanner.__init__(self)
        Parser.__init__(self)
        self._start(file)

    def scan_to_next_token(self) -> None:
        """As PyYAML's, but a tab that cannot be indentation is whitespace.

        That is a tab followed only by a comment or the line's end (trailing, or a blank
        line), or a tab after content in flow context (``[a,<TAB>b]``).
        """
        super().scan_to_next_token()
        while self.peek() == "\t" and self._tab_separates():
            while self.peek() in " \t":
                self.forward()
            super().scan_to_next_token()

    def _tab_separates(self) -> bool:
        length = 0
        while self.peek(length) in " \t":
            length += 1
        if self.peek(length) in _LINE_END + "#":
            return True
        after_content = self.buffer[self.pointer - self.column : self.pointer].strip(" \t")
        return bool(self.flow_level and after_content)

    def scan_plain_spaces(self, indent: Any, start_mark: Any) -> list[Any] | None:
        """As PyYAML's, but tabs between and after the words of a plain scalar are whitespace."""
        length = 0
        while self.peek(length) in " \t":
            length += 1
        whitespace = str(self.prefix(length))
        if "\t" not in whitespace:
            return super().scan_plain_spaces(indent, start_mark)
        self.forward(length)
        if self.peek() in _LINE_END:  # trailing whitespace: dropped, as PyYAML drops spaces
            return super().scan_plain_spaces(indent, start_mark)
        return [whitespace]

    def fetch_flow_collection_start(self, TokenClass: Any) -> None:
        """Stop at the first ``[``/``{`` nested too deep, before PyYAML's scanner looks ahead.

        (Its simple-key bookkeeping costs time per open flow level for every token.) The
        composer lags behind the scanner, so the path is the deepest one known so far.
        """
        if self.flow_level >= MAX_DEPTH:
            raise _Stop(self._too_deep(self.get_mark()))
        super().fetch_flow_collection_start(TokenClass)


if CParser is not None:

    class _FastLoader(CParser, _Composing):  # type: ignore[misc]
        """libyaml's parser (C) under the same composer: 3-5x faster than PyYAML's Python
        parser. Used only for text it reads exactly as that one does (see
        :data:`_FAST_TEXT`); anything else, and any error, goes the pure-Python way."""

        def __init__(self, text: str, file: str) -> None:
            CParser.__init__(self, text)
            self._start(file)


#: Printable ASCII and newlines: no tabs (our scanner treats some as whitespace, libyaml
#: does not), no carriage returns or control characters, and columns count the same.
_FAST_TEXT = re.compile(r"[\x20-\x7e\n]*")
#: What libyaml reads otherwise than PyYAML (found by comparing the two on random text): a
#: block scalar header run into a comment (``|#``: libyaml accepts it), ``?`` (explicit keys,
#: and plain scalars in flow collections), document markers and empty values in flow
#: collections (other positions). Text with any of them takes the Python parser.
_SLOW_ONLY = re.compile(r"[|>][-+0-9]*#|\?|^(?:---|\.\.\.)|:\s*[,\]}]", re.M)


def _target(node: Node) -> Node:
    """The node an alias stands for (or the node itself)."""
    return node.value if isinstance(node, _AliasNode) else node


def _key_text(key: Node | None) -> str:
    if isinstance(key, ScalarNode):
        return str(key.value)
    return "?"  # a complex key (or a key being composed)


def _syntax_problem(exc: MarkedYAMLError, file: str) -> Problem:
    message = exc.problem or exc.context or "syntax error"
    if exc.problem and exc.context and exc.context_mark is not None:
        message += f" ({exc.context} at line {exc.context_mark.line + 1})"
    if "'\\t'" in message:
        message += " (use spaces, not tabs, here)"
    where = _location(file, exc.problem_mark or exc.context_mark)
    return Problem(f"invalid YAML: {message}", "", where, "syntax")


def _reader_problem(exc: ReaderError, text: str, file: str) -> Problem:
    position = int(exc.position)
    line = text.count("\n", 0, position) + 1
    col = position - (text.rfind("\n", 0, position) + 1) + 1
    message = f"invalid YAML: character U+{int(exc.character):04X} is not allowed ({exc.reason})"
    return Problem(message, "", Location(file, line, col), "syntax")


def _compose_with(loader_class: Any, text: str, file: str) -> Node | None:
    loader = loader_class(text, file)
    try:
        return loader.compose_single()  # type: ignore[no-any-return]
    finally:
        loader.dispose()


def _compose(text: str, file: str) -> Node | None:
    try:
        return _compose_with(_Loader, text, file)
    except _Stop as stop:
        problem = stop.problem
    except MarkedYAMLError as exc:
        problem = _syntax_problem(exc, file)
    except ReaderError as exc:
        problem = _reader_problem(exc, text, file)
    except (RecursionError, MemoryError):
        problem = Problem("nesting too deep", "", Location(file, 1, 1), "too-deep")
    raise SweepspecError(problem)


def _decode(text: str | bytes, file: str) -> str:
    """``text`` as a string without a BOM; too large or invalid UTF-8 is an error."""
    if isinstance(text, bytes) or len(text) > MAX_BYTES:
        size = len(text)
    else:
        size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_BYTES:
        message = f"file is too large ({size} bytes; at most {MAX_BYTES} are read)"
        raise SweepspecError(Problem(message, "", Location(file, 1, 1), "too-large"))
    if isinstance(text, str):
        return text.removeprefix("\ufeff")
    try:
        return text.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        bad = exc.start
        line = text.count(b"\n", 0, bad) + 1
        col = bad - (text.rfind(b"\n", 0, bad) + 1) + 1
        message = f"file is not valid UTF-8 (byte 0x{text[bad]:02x} at byte offset {bad})"
        raise SweepspecError(Problem(message, "", Location(file, line, col), "not-utf8")) from None


# --------------------------------------------------------------------------- building data


def _expanded_size(node: Node, path: KeyPath, file: str, sizes: dict[int, int]) -> int:
    """How many nodes ``node`` becomes once its aliases are expanded; too many is an error.

    Each collection is sized once (``sizes``, by id), so an alias bomb is caught in time
    linear in the *composed* tree. Aliases only name nodes composed earlier, so the recursion
    goes no deeper than the composer's nesting bound. A recursive alias counts as one node
    here; building the data reports it.
    """
    target = _target(node)
    if target is not node:
        sizes[ALIAS_SEEN] = 1
    node = target
    if isinstance(node, ScalarNode):
        return 1
    known = sizes.get(id(node))
    if known is not None:
        return known
    sizes[id(node)] = 1  # provisional, for a recursive alias
    total = 1
    if isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            total += _expanded_size(item, (*path, index), file, sizes)
    else:
        for key, value in node.value:
            total += _expanded_size(key, path, file, sizes)
            total += _expanded_size(value, (*path, _key_text(_target(key))), file, sizes)
    if total > MAX_NODES:
        if sizes.get(ALIAS_SEEN):
            message = (
                f"too many YAML nodes (aliases expand to more than {MAX_NODES}); "
                "is this an alias bomb?"
            )
            code = "alias-bomb"
        else:
            message = f"too many YAML nodes (more than {MAX_NODES}); a spec is smaller than that"
            code = "too-large"
        where = _location(file, node.start_mark)
        raise _Stop(Problem(message, _dotted(path), where, code))
    sizes[id(node)] = total
    return total


class _Builder:
    """Walks a composed node tree into plain data and a source map, collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.entries: dict[KeyPath, _Entry] = {}
        self.problems: list[Problem] = []
        self._reported: set[tuple[str, Location]] = set()
        # ids of the collections being built: meeting one again is a recursive alias
        self._building: set[int] = set()

    def report(self, message: str, path: KeyPath, mark: Mark | None, code: str) -> None:
        """Record a problem once per message and place (aliases re-visit the same nodes)."""
        where = _location(self.file, mark)
        if (message, where) not in self._reported:
            self._reported.add((message, where))
            self.problems.append(Problem(message, _dotted(path), where, code))

    def build(self, node: Node, path: KeyPath, key: Location | None) -> Any:
        """The plain value of ``node`` at ``path``; records its entry in the source map."""
        mark = node.start_mark
        node = _target(node)
        block = isinstance(node, CollectionNode) and not node.flow_style
        value_at = _location(self.file, mark)
        self.entries[path] = _Entry(key or value_at, value_at, block)
        if isinstance(node, ScalarNode):
            return self.scalar(node, path, mark)
        if id(node) in self._building:
            self.report(
                "recursive YAML alias: an anchor refers to itself", path, mark, "alias-loop"
            )
            return None
        if len(path) >= MAX_DEPTH:
            self.report(f"nesting deeper than {MAX_DEPTH} levels", path, mark, "too-deep")
            return None
        self.check_collection_tag(node, path)
        self._building.add(id(node))
        try:
            if isinstance(node, MappingNode):
                return self.mapping(node, path)
            return [self.build(item, (*path, i), None) for i, item in enumerate(node.value)]
        finally:
            self._building.discard(id(node))

    def scalar(self, node: ScalarNode, path: KeyPath, mark: Mark | None) -> Any:
        if node.tag not in _SCALAR_TAGS:
            self.bad_tag(node, path, mark)
            return node.value
        try:
            return _scalar_value(node.tag, node.value)
        except ValueError:
            shown = node.value if len(node.value) <= 40 else node.value[:37] + "..."
            message = f"{shown!r} is not a valid {_short_tag(node.tag)}"
            self.report(message, path, mark, "bad-scalar")
            return node.value

    def check_collection_tag(self, node: Node, path: KeyPath) -> None:
        expected = _MAP if isinstance(node, MappingNode) else _SEQ
        if node.tag != expected:
            self.bad_tag(node, path, node.start_mark)

    def bad_tag(self, node: Node, path: KeyPath, mark: Mark | None) -> None:
        tag = _short_tag(node.tag)
        if node.tag in _SCALAR_TAGS or node.tag in (_SEQ, _MAP):
            kind = {ScalarNode: "scalar", SequenceNode: "sequence", MappingNode: "mapping"}
            message = f"YAML tag '{tag}' cannot be used on a {kind[type(node)]}"
        else:
            message = f"YAML tags are not allowed (got '{tag}')"
        self.report(message, path, mark, "tag")

    def mapping(self, node: MappingNode, path: KeyPath) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_at: dict[str, Location] = {}
        for key_node, value_node in node.value:
            key = self.key(key_node, path)
            key_at = _location(self.file, key_node.start_mark)
            if key == "<<":
                message = "YAML merge keys ('<<') are not supported; use 'extends:'"
                self.report(message, (*path, key), key_node.start_mark, "merge-key")
                continue
            if key is None or key in first_at:
                if key is not None:
                    first = first_at[key].line
                    message = f"duplicate key {key!r} (first defined at line {first})"
                    self.report(message, (*path, key), key_node.start_mark, "duplicate-key")
                # still look for problems inside the value of a bad or repeated key
                piece = key if key is not None else _key_text(_target(key_node))
                self.build(value_node, (*path, piece), key_at)
                continue
            first_at[key] = key_at
            result[key] = self.build(value_node, (*path, key), key_at)
        return result

    def key(self, node: Node, path: KeyPath) -> str | None:
        """The key's string, or ``None`` after reporting why it is not one."""
        mark = node.start_mark
        target = _target(node)
        if isinstance(target, ScalarNode) and target.tag == _STR:
            return str(target.value)
        if isinstance(target, ScalarNode) and target.tag not in _SCALAR_TAGS:
            self.bad_tag(target, path, mark)
            return None
        if isinstance(target, ScalarNode):
            kind = _short_tag(target.tag)[2:]
            got = "null" if kind == "null" else f"the {kind} {target.value}"
            got += "; quote it to make it a string"
            piece = str(target.value)
        else:
            got = "a mapping" if isinstance(target, MappingNode) else "a sequence"
            piece = "?"
        self.report(f"keys must be strings (got {got})", (*path, piece), mark, "key-type")
        return None


def load_yaml(text: str | bytes, file: str) -> tuple[Any, SourceMap]:
    """Parse one YAML document into plain data and its :class:`SourceMap`.

    Raises :class:`SweepspecError` listing all problems found (every duplicate key, tag,
    non-string key, ...); a syntax error stops parsing and is reported at its position.
    An empty document (or only comments) gives ``None``.
    """
    decoded = _decode(text, file)
    if CParser is not None and _FAST_TEXT.fullmatch(decoded) and not _SLOW_ONLY.search(decoded):
        try:
            return _build(_compose_with(_FastLoader, decoded, file), file)
        except Exception:  # any problem is reported by the Python parser, in
            pass  # its own words and positions (libyaml words some errors differently)
    return _build(_compose(decoded, file), file)


def _build(root: Node | None, file: str) -> tuple[Any, SourceMap]:
    if root is None:
        return None, SourceMap(file)
    try:
        _expanded_size(root, (), file, {})
    except _Stop as stop:
        raise SweepspecError(stop.problem) from None
    builder = _Builder(file)
    try:
        data = builder.build(root, (), Location(file, 1, 1))
    except (RecursionError, MemoryError):
        builder.problems.append(Problem("nesting too deep", "", Location(file, 1, 1), "too-deep"))
    if builder.problems:
        raise SweepspecError(builder.problems)
    return data, SourceMap(file, builder.entries)
