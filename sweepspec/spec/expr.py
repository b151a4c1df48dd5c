"""A small, safe expression language for spec ``constraints``, ``when`` and ``derived`` values.

Examples: ``lora_alpha >= lora_r``, ``optimizer in ['sgd', 'rmsprop']``, ``hidden // 8``,
``a.b.c + a.b.d <= 0.7``, ``0 < x <= 1``.

The text is parsed with :func:`ast.parse` and the Python AST is converted, node by node, into a
small AST of frozen dataclasses; anything not on the whitelist is an :class:`ExprError`.
Nothing is ever compiled or ``eval``-ed. Names are parameter paths: ``lr`` or a dotted path
``risk_config.risk_weights.drawdown_pct`` (one name, not attribute access).

Limits: at most :data:`MAX_LENGTH` characters, :data:`MAX_BRACKET_DEPTH` levels of brackets and
:data:`MAX_AST_DEPTH` levels of operators; at evaluation, ints are capped at
:data:`MAX_INT_BITS` bits and ``**`` on floats at :data:`MAX_FLOAT` in magnitude, so every
expression evaluates in well under a millisecond or fails with an :class:`ExprEvalError`.
"""

from __future__ import annotations

import ast
import math
import numbers
import operator
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FUNCTIONS",
    "MAX_AST_DEPTH",
    "MAX_BRACKET_DEPTH",
    "MAX_FLOAT",
    "MAX_INT_BITS",
    "MAX_LENGTH",
    "Expr",
    "ExprError",
    "ExprEvalError",
    "MissingName",
    "parse_expr",
]

MAX_LENGTH = 1000
MAX_BRACKET_DEPTH = 50
MAX_AST_DEPTH = 200
MAX_INT_BITS = 10_000
MAX_FLOAT = 1e300

FUNCTIONS: frozenset[str] = frozenset({"abs", "min", "max", "log", "log2", "log10", "exp", "sqrt"})
_FUNCTION_LIST = ", ".join(sorted(FUNCTIONS))
# name -> (min args, max args or None for unbounded)
_ARITY: dict[str, tuple[int, int | None]] = {
    "abs": (1, 1), "log": (1, 2), "log2": (1, 1), "log10": (1, 1), "exp": (1, 1),
    "sqrt": (1, 1), "min": (1, None), "max": (1, None),
}  # fmt: skip
_LITERAL_NAMES: dict[str, object] = {"true": True, "false": False, "null": None}


class ExprError(Exception):
    """A syntax error or a disallowed construct.

    ``message`` says what is wrong; ``col`` is the 1-based column in the expression text
    (best effort: where the offending construct starts).
    """

    def __init__(self, message: str, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.col = col


class ExprEvalError(Exception):
    """A failure while evaluating: a type mismatch, an overflow, a division by zero...

    ``spec_path`` is the key path of the expression in the spec (a condition, a derived value
    or a constraint), set by whoever evaluated it, so that the error can be located."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.spec_path: tuple[str | int, ...] | None = None


class MissingName(ExprEvalError):
    """A referenced name has no value (unknown, or an inactive conditional parameter)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"'{name}' has no value")
        self.name = name


# ---------------------------------------------------------------------------------------------
# The AST


@dataclass(frozen=True)
class _Const:
    value: object
    col: int


@dataclass(frozen=True)
class _Name:
    path: str
    col: int


@dataclass(frozen=True)
class _Seq:
    """A list or tuple literal; evaluates to a tuple."""

    items: tuple[_Node, ...]
    col: int


@dataclass(frozen=True)
class _Unary:
    op: str  # "-", "+", "not"
    operand: _Node
    col: int


@dataclass(frozen=True)
class _BinOp:
    op: str  # "+", "-", "*", "/", "//", "%", "**"
    left: _Node
    right: _Node
    col: int


@dataclass(frozen=True)
class _BoolOp:
    op: str  # "and", "or"
    values: tuple[_Node, ...]
    col: int


@dataclass(frozen=True)
class _Compare:
    left: _Node
    ops: tuple[str, ...]  # "==", "!=", "<", "<=", ">", ">=", "in", "not in"
    comparators: tuple[_Node, ...]
    col: int


@dataclass(frozen=True)
class _Call:
    func: str
    args: tuple[_Node, ...]
    col: int


_Node = _Const | _Name | _Seq | _Unary | _BinOp | _BoolOp | _Compare | _Call


def _children(node: _Node) -> tuple[_Node, ...]:
    if isinstance(node, _Seq):
        return node.items
    if isinstance(node, _BoolOp):
        return node.values
    if isinstance(node, _Call):
        return node.args
    if isinstance(node, _Unary):
        return (node.operand,)
    if isinstance(node, _BinOp):
        return (node.left, node.right)
    if isinstance(node, _Compare):
        return (node.left, *node.comparators)
    return ()


def _walk(root: _Node) -> Iterator[_Node]:
    """Pre-order, left to right, without recursion."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(_children(node)))


# ---------------------------------------------------------------------------------------------
# The public expression


@dataclass(frozen=True)
class Expr:
    """A parsed expression. Build one with :func:`parse_expr`."""

    source: str
    _root: _Node = field(repr=False)
    _name_cols: tuple[tuple[str, int], ...] = field(default=(), repr=False, compare=False)
    #: how many nodes the expression has: the work of one evaluation, at most
    size: int = field(default=1, compare=False)

    def __str__(self) -> str:
        return self.source

    def names(self) -> frozenset[str]:
        """The dotted parameter paths the expression refers to."""
        return frozenset(name for name, _ in self._name_cols)

    def name_columns(self) -> dict[str, int]:
        """Each referenced path -> the 1-based column of its first occurrence."""
        return dict(self._name_cols)

    def evaluate(self, env: Mapping[str, object]) -> object:
        """The value of the expression, where ``env`` maps dotted paths to values.

        Raises :class:`MissingName` when a path the evaluation needs is not in ``env``,
        :class:`ExprEvalError` for any other failure.
        """
        try:
            return _Evaluator(env).eval(self._root)
        except RecursionError:  # pragma: no cover - the depth is capped at parse time
            raise ExprEvalError("expression is nested too deeply") from None


def parse_expr(text: str) -> Expr:
    """Parse ``text`` into an :class:`Expr`; raises :class:`ExprError` when it is not valid."""
    if not isinstance(text, str):
        raise ExprError(f"an expression must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExprError(f"expression is too long ({len(text)} > {MAX_LENGTH} characters)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ExprError("expression is not valid text (unpaired surrogate)", e.start + 1) from None
    # One line, same length: columns are plain character offsets into ``text``.
    flat = text.translate(_FLATTEN)
    body = flat.lstrip(" ")
    lead = len(flat) - len(body)
    if not body.strip():
        raise ExprError("empty expression")
    _check_brackets(flat)
    _check_ascii_names(body, lead)
    tree = _ast_parse(body, lead)
    converter = _Converter(body, lead)
    _check_ast_depth(tree, converter)
    try:
        root = converter.convert(tree.body)
    except RecursionError:  # pragma: no cover - the depth is checked above
        raise ExprError("expression is nested too deeply") from None
    cols: dict[str, int] = {}
    size = 0
    for node in _walk(root):
        size += 1
        if isinstance(node, _Name):
            cols.setdefault(node.path, node.col)
    return Expr(text, root, tuple(cols.items()), size)


def _check_ascii_names(body: str, lead: int) -> None:
    """Names are plain ASCII: Python reads ``lr`` in fullwidth letters, or other look-alikes,
    as ``lr`` once normalised (NFKC), so an expression could name a parameter it does not
    show. Text in quotes may hold anything."""
    if body.isascii():
        return
    quote = ""
    escaped = False
    for i, ch in enumerate(body):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif not ch.isascii():
            raise ExprError(
                f"names and operators are plain ASCII, but got {ch!r} (U+{ord(ch):04X}); a "
                "look-alike letter would silently name another parameter",
                lead + i + 1,
            )


# ---------------------------------------------------------------------------------------------
# Parsing

_FLATTEN = str.maketrans(dict.fromkeys("\n\r\t\f\v", " "))


def _check_brackets(text: str) -> None:
    """Reject deep bracket nesting before the (recursive) CPython parser sees it."""
    depth = 0
    quote = ""
    escaped = False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
            if depth > MAX_BRACKET_DEPTH:
                raise ExprError(
                    f"expression is nested too deeply (more than {MAX_BRACKET_DEPTH} "
                    "levels of brackets)",
                    i + 1,
                )
        elif ch in ")]}":
            depth -= 1


def _ast_parse(body: str, lead: int) -> ast.Expression:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return ast.parse(body, mode="eval")
    except SyntaxError as e:
        offset = e.offset if e.offset and e.offset > 0 else len(body) + 1
        col = lead + min(offset, len(body) + 1)
        raise ExprError(f"syntax error: {e.msg}", col) from None
    except (RecursionError, MemoryError, ValueError, OverflowError, UnicodeError) as e:
        raise ExprError(f"cannot parse expression: {type(e).__name__}", lead + 1) from None


def _check_ast_depth(tree: ast.AST, converter: _Converter) -> None:
    stack: list[tuple[ast.AST, int]] = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_AST_DEPTH:
            raise ExprError(
                f"expression is nested too deeply (more than {MAX_AST_DEPTH} levels)",
                converter.col(node),
            )
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


_BINOPS: dict[type[ast.operator], str] = {
    ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//",
    ast.Mod: "%", ast.Pow: "**",
}  # fmt: skip
_BAD_BINOPS: dict[type[ast.operator], str] = {
    ast.MatMult: "@", ast.LShift: "<<", ast.RShift: ">>", ast.BitOr: "|",
    ast.BitXor: "^", ast.BitAnd: "&",
}  # fmt: skip
_CMPOPS: dict[type[ast.cmpop], str] = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}  # fmt: skip
_DISALLOWED: dict[type[ast.AST], str] = {
    ast.Subscript: "subscripts are not allowed",
    ast.Slice: "slices are not allowed",
    ast.Lambda: "lambdas are not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.NamedExpr: "assignment expressions (:=) are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Starred: "starred expressions are not allowed",
    ast.IfExp: "conditional expressions (x if c else y) are not allowed",
    ast.Dict: "dict literals are not allowed",
    ast.Set: "set literals are not allowed",
    ast.Await: "await is not allowed",
    ast.Yield: "yield is not allowed",
    ast.YieldFrom: "yield is not allowed",
}


class _Converter:
    """Python AST -> our AST, accepting only whitelisted constructs."""

    def __init__(self, body: str, lead: int) -> None:
        self._body_bytes = body.encode("utf-8")
        self._lead = lead

    def col(self, node: ast.AST) -> int:
        """1-based character column of ``node`` in the original text."""
        offset = getattr(node, "col_offset", 0)
        chars = len(self._body_bytes[:offset].decode("utf-8", errors="replace"))
        return self._lead + chars + 1

    def fail(self, message: str, node: ast.AST) -> ExprError:
        return ExprError(message, self.col(node))

    def convert(self, node: ast.expr) -> _Node:
        handler = self._HANDLERS.get(type(node))
        if handler is not None:
            return handler(self, node)
        message = _DISALLOWED.get(type(node), f"'{type(node).__name__}' is not allowed")
        raise self.fail(message, node)

    def constant(self, node: ast.Constant) -> _Node:
        value = node.value
        if isinstance(value, bool) or value is None or isinstance(value, str | int):
            return _Const(value, self.col(node))
        if isinstance(value, float):
            if not math.isfinite(value):
                raise self.fail("number literal is too large", node)
            return _Const(value, self.col(node))
        kinds = {bytes: "bytes literals are", complex: "complex numbers are"}
        kind = kinds.get(type(value), "'...' is")
        raise self.fail(f"{kind} not allowed", node)

    def name(self, node: ast.Name) -> _Node:
        if node.id in _LITERAL_NAMES:
            return _Const(_LITERAL_NAMES[node.id], self.col(node))
        return self._path([node.id], node)

    def attribute(self, node: ast.Attribute) -> _Node:
        parts: list[str] = []
        current: ast.expr = node
        while isinstance(current, ast.Attribute):
            if not self._plain_dot(current):
                raise self.fail("attribute access is not allowed", current)
            parts.append(current.attr)
            current = current.value
        if not isinstance(current, ast.Name) or current.id in _LITERAL_NAMES:
            raise self.fail("attribute access is not allowed", node)
        parts.append(current.id)
        return self._path(parts[::-1], node)

    def _plain_dot(self, node: ast.Attribute) -> bool:
        """Whether ``node`` is written ``<value>.attr``: ``(a).b`` is attribute access."""
        start, end = node.value.end_col_offset, node.end_col_offset
        if start is None or end is None or node.value.end_lineno != node.end_lineno:
            return False
        between = self._body_bytes[start:end].decode("utf-8", errors="replace")
        return "".join(between.split()) == "." + node.attr

    def _path(self, parts: list[str], node: ast.AST) -> _Node:
        for part in parts:
            if part.startswith("__"):
                raise self.fail(f"names starting with '__' are not allowed ({part!r})", node)
        return _Name(".".join(parts), self.col(node))

    def sequence(self, node: ast.List | ast.Tuple) -> _Node:
        return _Seq(tuple(self.convert(item) for item in node.elts), self.col(node))

    def unary(self, node: ast.UnaryOp) -> _Node:
        ops: dict[type[ast.unaryop], str] = {ast.USub: "-", ast.UAdd: "+", ast.Not: "not"}
        op = ops.get(type(node.op))
        if op is None:
            raise self.fail("operator '~' is not allowed", node)
        return _Unary(op, self.convert(node.operand), self.col(node))

    def binop(self, node: ast.BinOp) -> _Node:
        op = _BINOPS.get(type(node.op))
        if op is None:
            raise self.fail(
                f"operator '{_BAD_BINOPS.get(type(node.op), '?')}' is not allowed", node
            )
        return _BinOp(op, self.convert(node.left), self.convert(node.right), self.col(node))

    def boolop(self, node: ast.BoolOp) -> _Node:
        op = "and" if isinstance(node.op, ast.And) else "or"
        return _BoolOp(op, tuple(self.convert(v) for v in node.values), self.col(node))

    def compare(self, node: ast.Compare) -> _Node:
        left = self.convert(node.left)
        ops: list[str] = []
        comparators: list[_Node] = []
        for op_node, right in zip(node.ops, node.comparators, strict=True):
            op = _CMPOPS.get(type(op_node))
            if op is None:
                raise self.fail("'is' and 'is not' are not allowed; use '==' or '!='", node)
            if op in ("in", "not in") and not _is_container_operand(right):
                raise self.fail(
                    f"the right side of '{op}' must be a list, a tuple, a string or a name",
                    right,
                )
            ops.append(op)
            comparators.append(self.convert(right))
        return _Compare(left, tuple(ops), tuple(comparators), self.col(node))

    def call(self, node: ast.Call) -> _Node:
        if not isinstance(node.func, ast.Name) or node.func.id not in FUNCTIONS:
            raise self.fail(f"only the functions {_FUNCTION_LIST} can be called", node)
        name = node.func.id
        if node.keywords:
            raise self.fail("keyword arguments are not allowed", node.keywords[0])
        low, high = _ARITY[name]
        count = len(node.args)
        if count < low or (high is not None and count > high):
            wanted = f"{low} to {high}" if high != low else str(low)
            wanted = f"at least {low}" if high is None else wanted
            raise self.fail(f"{name}() takes {wanted} argument(s), not {count}", node)
        return _Call(name, tuple(self.convert(a) for a in node.args), self.col(node))

    _HANDLERS: dict[type[ast.AST], Callable[[_Converter, Any], _Node]] = {
        ast.Constant: constant,
        ast.Name: name,
        ast.List: sequence,
        ast.Tuple: sequence,
        ast.UnaryOp: unary,
        ast.BinOp: binop,
        ast.BoolOp: boolop,
        ast.Compare: compare,
        ast.Call: call,
        ast.Attribute: attribute,
    }


def _is_container_operand(node: ast.expr) -> bool:
    if isinstance(node, ast.List | ast.Tuple | ast.Name | ast.Attribute):
        return True
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


# ---------------------------------------------------------------------------------------------
# Evaluation


def _type_name(value: object) -> str:
    if isinstance(value, tuple | list):
        return "list"
    return "None" if value is None else type(value).__name__


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_PLAIN = frozenset({bool, int, float, str, type(None)})
_NUMBER_TYPES = frozenset({int, float})


def _normalize(value: object) -> object:
    """Env values as the evaluator sees them: ints, floats, tuples for sequences."""
    if isinstance(value, bool | int | float | str) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, list | tuple):
        return tuple(_normalize(v) for v in value)
    return value


def _truth(value: object) -> bool:
    try:
        return bool(value)
    except Exception as e:
        raise ExprEvalError(f"cannot use a {_type_name(value)} as a truth value: {e}") from None


def _equal(a: object, b: object) -> bool:
    try:
        return bool(a == b)
    except Exception as e:
        raise ExprEvalError(
            f"cannot compare {_type_name(a)!r} with {_type_name(b)!r}: {e}"
        ) from None


def _check_result(result: object, *operands: object) -> object:
    """Reject results that blew up: huge ints, and inf/nan from finite floats."""
    if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
        raise ExprEvalError(f"integer result is too large (more than {MAX_INT_BITS} bits)")
    finite_operands = all(math.isfinite(x) for x in operands if isinstance(x, float))
    if isinstance(result, float) and not math.isfinite(result) and finite_operands:
        raise ExprEvalError("arithmetic overflow (result is not a finite number)")
    return result


def _pow(a: int | float, b: int | float) -> int | float:
    if isinstance(a, int) and isinstance(b, int) and b >= 0:
        if abs(a) > 1 and b * math.log2(abs(a)) > MAX_INT_BITS + 1:
            raise ExprEvalError(f"result of ** is too large (more than {MAX_INT_BITS} bits)")
        power: int = a**b
        return power
    fa, fb = float(a), float(b)
    if fa == 0 and fb < 0:
        raise ExprEvalError("0 cannot be raised to a negative power")
    if fa < 0 and not fb.is_integer():
        raise ExprEvalError("a negative number cannot be raised to a fractional power")
    if fa != 0 and math.isfinite(fa) and fb * math.log10(abs(fa)) > math.log10(MAX_FLOAT):
        raise ExprEvalError(f"result of ** is too large (more than {MAX_FLOAT:g})")
    return math.pow(fa, fb)


_ARITH: dict[str, Callable[[int | float, int | float], int | float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": _pow,
}  # fmt: skip


def _arith(op: str, a: object, b: object) -> object:
    if not (_is_number(a) and _is_number(b)):
        raise ExprEvalError(
            f"unsupported operand types for {op}: {_type_name(a)!r} and {_type_name(b)!r}"
        )
    assert isinstance(a, int | float) and isinstance(b, int | float)
    try:
        result = _ARITH[op](a, b)
    except ZeroDivisionError:
        raise ExprEvalError(f"division by zero in '{op}'") from None
    except (OverflowError, ValueError) as e:
        raise ExprEvalError(f"arithmetic error in '{op}': {e}") from None
    return _check_result(result, a, b)


_ORDER: dict[str, Callable[[Any, Any], Any]] = {
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}  # fmt: skip


def _compare(op: str, a: object, b: object) -> bool:
    if type(a) in _NUMBER_TYPES and type(b) in _NUMBER_TYPES and op in _ORDER:
        return bool(_ORDER[op](a, b))  # the common case, first
    if op == "==":
        return _equal(a, b)
    if op == "!=":
        return not _equal(a, b)
    if op in ("in", "not in"):
        return _contains(a, b) == (op == "in")
    both_numbers = _is_number(a) and _is_number(b)
    if not (both_numbers or (isinstance(a, str) and isinstance(b, str))):
        raise ExprEvalError(f"cannot compare {_type_name(a)!r} with {_type_name(b)!r}")
    return bool(_ORDER[op](a, b))


def _contains(item: object, container: object) -> bool:
    if isinstance(container, str):
        if not isinstance(item, str):
            raise ExprEvalError(
                f"'in <string>' requires a string on the left, not {_type_name(item)!r}"
            )
        return item in container
    if isinstance(container, tuple):
        return any(_equal(item, element) for element in container)
    raise ExprEvalError(
        f"'in' needs a list or a string on the right, not {_type_name(container)!r}"
    )


def _numbers_for(name: str, args: Sequence[object]) -> list[int | float]:
    if name in ("min", "max") and len(args) == 1 and isinstance(args[0], tuple):
        args = args[0]
        if not args:
            raise ExprEvalError(f"{name}() of an empty list")
    out: list[int | float] = []
    for arg in args:
        if not _is_number(arg):
            raise ExprEvalError(f"{name}() needs numbers, not {_type_name(arg)!r}")
        assert isinstance(arg, int | float)
        out.append(arg)
    return out


def _log(x: int | float, base: int | float = math.e) -> float:
    if x <= 0 or base <= 0 or base == 1:
        raise ExprEvalError(f"log() needs a positive argument and base, got {x!r}, base {base!r}")
    return math.log(x, base)


def _positive(fn: Callable[[int | float], float], what: str) -> Callable[[int | float], float]:
    def checked(x: int | float) -> float:
        if x <= 0:
            raise ExprEvalError(f"{what}() needs a positive argument, got {x!r}")
        return fn(x)

    return checked


def _sqrt(x: int | float) -> float:
    if x < 0:
        raise ExprEvalError(f"sqrt() of a negative number ({x!r})")
    return math.sqrt(x)


_FUNCS: dict[str, Callable[..., int | float]] = {
    "abs": abs, "min": lambda *xs: min(xs), "max": lambda *xs: max(xs), "log": _log,
    "log2": _positive(math.log2, "log2"), "log10": _positive(math.log10, "log10"),
    "exp": math.exp, "sqrt": _sqrt,
}  # fmt: skip


def _call(name: str, args: Sequence[object]) -> object:
    values = _numbers_for(name, args)
    try:
        result = _FUNCS[name](*values)
    except (OverflowError, ValueError) as e:
        raise ExprEvalError(f"{name}() failed: {e}") from None
    return _check_result(result, *values)


class _Evaluator:
    def __init__(self, env: Mapping[str, object]) -> None:
        self._env = env

    def eval(self, node: _Node) -> object:
        if isinstance(node, _Name):  # the most frequent kinds first
            try:
                value = self._env[node.path]
            except KeyError:
                raise MissingName(node.path) from None
            return value if type(value) in _PLAIN else _normalize(value)
        if isinstance(node, _Const):
            return node.value
        if isinstance(node, _Compare):
            return self._compare(node)
        if isinstance(node, _Seq):
            return tuple(self.eval(item) for item in node.items)
        if isinstance(node, _Unary):
            return self._unary(node.op, self.eval(node.operand))
        if isinstance(node, _BinOp):
            return _arith(node.op, self.eval(node.left), self.eval(node.right))
        if isinstance(node, _BoolOp):
            return self._boolop(node)
        return _call(node.func, [self.eval(a) for a in node.args])

    @staticmethod
    def _unary(op: str, value: object) -> object:
        if op == "not":
            return not _truth(value)
        if not _is_number(value):
            raise ExprEvalError(f"bad operand type for unary {op}: {_type_name(value)!r}")
        assert isinstance(value, int | float)
        return -value if op == "-" else +value

    def _boolop(self, node: _BoolOp) -> bool:
        stop_on = node.op == "or"  # 'or' stops at the first true value, 'and' at the first false
        for value in node.values:
            if _truth(self.eval(value)) == stop_on:
                return stop_on
        return not stop_on

    def _compare(self, node: _Compare) -> bool:
        left = self.eval(node.left)
        for op, comparator in zip(node.ops, node.comparators, strict=True):
            right = self.eval(comparator)
            if not _compare(op, left, right):
                return False
            left = right
        return True
