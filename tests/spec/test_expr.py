"""Tests for the safe expression language in :mod:`sweepspec.spec.expr`."""

from __future__ import annotations

import builtins
import contextlib
import math
import time
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sweepspec.spec.expr import (
    FUNCTIONS,
    MAX_LENGTH,
    Expr,
    ExprError,
    ExprEvalError,
    MissingName,
    parse_expr,
)

ENV: dict[str, object] = {
    "lora_r": 8,
    "lora_alpha": 16,
    "lr": 1e-4,
    "learning_rate": 3e-3,
    "batch_size": 64,
    "hidden": 256,
    "x": 0.5,
    "n": -3,
    "optimizer": "sgd",
    "flag": True,
    "sizes": [64, 64],
    "nothing": None,
    "risk_config.risk_weights.drawdown_pct": 0.25,
    "risk_config.risk_weights.ulcer_index": 0.25,
}


def ev(text: str, env: dict[str, object] | None = None) -> object:
    return parse_expr(text).evaluate(ENV if env is None else env)


VALID: list[tuple[str, object]] = [
    # literals
    ("1", 1),
    ("1.5", 1.5),
    ("1e-3", 1e-3),
    ("'abc'", "abc"),
    ('"abc"', "abc"),
    ("True", True),
    ("False", False),
    ("true", True),
    ("false", False),
    ("None", None),
    ("null", None),
    # arithmetic and precedence
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 / 2", 3.5),
    ("7 // 2", 3),
    ("-7 // 2", -4),
    ("7 % 3", 1),
    ("2 ** 10", 1024),
    ("2 ** 3 ** 2", 512),
    ("-2 ** 2", -4),
    ("2 ** -2", 0.25),
    ("2.0 ** 0.5", math.sqrt(2)),
    ("-x", -0.5),
    ("+x", 0.5),
    ("- -1", 1),
    ("hidden // 8", 32),
    ("lora_alpha / lora_r", 2.0),
    ("1 - 2 - 3", -4),
    # comparisons
    ("lora_alpha >= lora_r", True),
    ("lora_alpha < lora_r", False),
    ("0 < x <= 1", True),
    ("0 < x < 0.25", False),
    ("1 < 2 < 3 < 4", True),
    ("1 < 3 > 2", True),
    ("batch_size == 64", True),
    ("batch_size != 64", False),
    ("batch_size <= 128 or learning_rate < 1e-3", True),
    ("batch_size > 128 or learning_rate < 1e-3", False),
    ("1 == 1.0", True),
    # strings
    ("optimizer == 'sgd'", True),
    ("optimizer != 'sgd'", False),
    ("'abc' < 'abd'", True),
    ("optimizer >= 'ta'", False),
    ("'g' in optimizer", True),
    ("'z' not in optimizer", True),
    # in lists / tuples
    ("optimizer in ['sgd', 'rmsprop']", True),
    ("optimizer in ('adam', 'rmsprop')", False),
    ("optimizer not in ['adam']", True),
    ("batch_size in [32, 64, 128]", True),
    ("batch_size in [lora_r * 8]", True),
    ("batch_size in []", False),
    ("64 in sizes", True),
    ("sizes == [64, 64]", True),
    ("sizes == (64, 64)", True),
    ("sizes != [64, 32]", True),
    ("nothing == None", True),
    ("nothing == null", True),
    # boolean logic
    ("true and not false", True),
    ("not flag", False),
    ("flag and 0", False),
    ("0 or 2", True),
    ("0 or 0", False),
    ("1 and 2 and 3", True),
    ("not (lora_r > 4 and lora_alpha > 32)", True),
    # functions
    ("abs(n)", 3),
    ("abs(-2.5)", 2.5),
    ("min(3, 1, 2)", 1),
    ("max(3, 1, 2)", 3),
    ("min(7)", 7),
    ("max(sizes)", 64),
    ("log(1)", 0.0),
    ("log(8, 2)", 3.0),
    ("log2(8)", 3.0),
    ("log10(1000)", 3.0),
    ("exp(0)", 1.0),
    ("sqrt(16)", 4.0),
    ("max(lora_r, lora_alpha // 4)", 8),
    ("log10(lr) < -3", True),
    # dotted paths
    (
        "risk_config.risk_weights.drawdown_pct + risk_config.risk_weights.ulcer_index <= 0.7",
        True,
    ),
    ("risk_config.risk_weights.drawdown_pct * 2", 0.5),
    ("risk_config . risk_weights . ulcer_index", 0.25),
    # whitespace and line breaks (a YAML block scalar keeps them)
    ("   lora_r  ", 8),
    ("lora_r +\n  1", 9),
    ("\tlora_r\t>= 1\n", True),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid_expressions(text: str, expected: object) -> None:
    result = ev(text)
    if isinstance(expected, float):
        assert isinstance(result, float)
        assert result == pytest.approx(expected)
    else:
        assert result == expected
        assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("hidden // 8", int), ("7 // 2.0", float), ("4 / 2", float), ("abs(-3)", int), ("-n", int)],
)
def test_result_types(text: str, kind: type) -> None:
    assert type(ev(text)) is kind


def test_and_or_short_circuit() -> None:
    # The right side would fail (missing name, division by zero) if evaluated.
    assert ev("false and missing > 1") is False
    assert ev("true or 1 / 0") is True
    assert ev("lora_r > 100 and 1 / 0") is False
    assert ev("1 > 2 < missing") is False  # chained comparisons stop early too
    with pytest.raises(MissingName):
        ev("true and missing > 1")


def test_comparison_operand_evaluated_once() -> None:
    assert ev("0 < lora_r <= 8") is True


def test_names_and_columns() -> None:
    expr = parse_expr("lr * 2 + risk_config.risk_weights.drawdown_pct - lr + abs(x)")
    assert expr.names() == frozenset({"lr", "risk_config.risk_weights.drawdown_pct", "x"})
    assert expr.name_columns() == {
        "lr": 1,
        "risk_config.risk_weights.drawdown_pct": 10,
        "x": 59,
    }
    assert parse_expr("  a.b >= c").name_columns() == {"a.b": 3, "c": 10}


def test_literal_names_and_functions_are_not_names() -> None:
    expr = parse_expr("true or false or null == None or max(1, a) > 0")
    assert expr.names() == frozenset({"a"})


def test_name_columns_count_characters_not_bytes() -> None:
    assert parse_expr("'éé' == b").name_columns() == {"b": 9}


def test_expr_api() -> None:
    expr = parse_expr("lora_alpha >= lora_r")
    assert isinstance(expr, Expr)
    assert expr.source == "lora_alpha >= lora_r"
    assert str(expr) == "lora_alpha >= lora_r"
    assert expr == parse_expr("lora_alpha >= lora_r")
    assert hash(expr) == hash(parse_expr("lora_alpha >= lora_r"))
    assert {"abs", "min", "max", "log", "log2", "log10", "exp", "sqrt"} == FUNCTIONS
    columns = expr.name_columns()
    columns["zzz"] = 1  # a copy: the expression is not changed
    assert "zzz" not in expr.name_columns()


def test_expr_is_picklable() -> None:
    import pickle

    expr = parse_expr("hidden // 8 + max(sizes)")
    assert pickle.loads(pickle.dumps(expr)).evaluate(ENV) == 96


def test_missing_name() -> None:
    with pytest.raises(MissingName) as info:
        ev("lora_r + dropout")
    assert info.value.name == "dropout"
    assert "dropout" in info.value.message
    assert isinstance(info.value, ExprEvalError)
    with pytest.raises(MissingName) as info:
        ev("risk_config.risk_weights.other > 0")
    assert info.value.name == "risk_config.risk_weights.other"


def test_env_values_are_normalised() -> None:
    from fractions import Fraction

    assert ev("q + 1", {"q": Fraction(1, 2)}) == 1.5  # a foreign real number (like numpy's)
    assert type(ev("q", {"q": Fraction(1, 2)})) is float
    assert ev("s == [1, 2]", {"s": (1, 2)}) is True
    assert ev("s == [[1, 2], 3]", {"s": [(1, 2), 3]}) is True


DISALLOWED: list[tuple[str, str, int]] = [
    # text, part of the message, column
    ("a[0]", "subscripts", 1),
    ("lr + a[1:2]", "subscripts", 6),
    ("(a).b", "attribute access", 1),
    ("(a.b).c", "attribute access", 1),
    ("'x'.upper()", "only the functions", 1),
    ("'x'.upper", "attribute access", 1),
    ("true.x", "attribute access", 1),
    ("lora_r.__class__", "'__'", 1),
    ("__builtins__", "'__'", 1),
    ("x + __import__", "'__'", 5),
    ("lambda: 0", "lambdas", 1),
    ("[x for x in ()]", "comprehensions", 1),
    ("{x for x in ()}", "comprehensions", 1),
    ("{x: 1 for x in ()}", "comprehensions", 1),
    ("(x for x in ())", "comprehensions", 1),
    ("(x := 1)", ":=", 2),
    ("f'{lora_r}'", "f-strings", 1),
    ("x if y else z", "conditional expressions", 1),
    ("1 + (x if y else z)", "conditional expressions", 6),
    ("[*a]", "starred", 2),
    ("b'x'", "bytes", 1),
    ("1j", "complex", 1),
    ("1 + 2j", "complex", 5),
    ("{1: 2}", "dict literals", 1),
    ("{1, 2}", "set literals", 1),
    ("...", "'...'", 1),
    ("open('/etc/passwd')", "only the functions", 1),
    ("lora_r > 1 and open('/etc/passwd')", "only the functions", 16),
    ("math.sqrt(4)", "only the functions", 1),
    ("abs(x=1)", "keyword arguments", 5),
    ("max(*a)", "starred", 5),
    ("min()", "min() takes at least 1", 1),
    ("sqrt(1, 2)", "sqrt() takes 1", 1),
    ("log(1, 2, 3)", "log() takes 1 to 2", 1),
    ("x is None", "'is'", 1),
    ("x is not None", "'is'", 1),
    ("~x", "'~'", 1),
    ("x << 1", "'<<'", 1),
    ("x | 1", "'|'", 1),
    ("x @ y", "'@'", 1),
    ("x in 5", "right side of 'in'", 6),
    ("x not in 1 + 2", "right side of 'not in'", 10),
    ("", "empty", 1),
    ("   ", "empty", 1),
    ("x" * (MAX_LENGTH + 1), "too long", 1),
    ("(" * 51 + "1" + ")" * 51, "nested too deeply", 51),
    ("-" * 300 + "1", "nested too deeply", 1),
]


@pytest.mark.parametrize(("text", "fragment", "col"), DISALLOWED)
def test_disallowed_constructs(text: str, fragment: str, col: int) -> None:
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert fragment in info.value.message
    if fragment != "nested too deeply" or col != 1:
        assert info.value.col == col
    assert str(info.value) == info.value.message


@pytest.mark.parametrize(
    ("text", "col"),
    [("a +", 4), ("1 1", 3), ("(a", 1), ("a )", 3), ("  a )", 5), ("'abc", 1), ("'é' + )", 7)],
)
def test_syntax_errors_have_columns(text: str, col: int) -> None:
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert info.value.message.startswith("syntax error")
    assert info.value.col == col


def test_nesting_limits() -> None:
    ok = "(" * 50 + "1" + ")" * 50
    assert parse_expr(ok).evaluate({}) == 1
    brackets_in_strings = "'" + "(" * 200 + "' == x"
    assert parse_expr(brackets_in_strings).names() == {"x"}
    long_sum = " + ".join(["x"] * 150)
    assert ev(long_sum) == pytest.approx(75.0)


def test_expr_error_defaults() -> None:
    err = ExprError("boom")
    assert (err.message, err.col) == ("boom", 1)
    assert ExprEvalError("bad").message == "bad"


EVAL_ERRORS: list[tuple[str, str]] = [
    ("1 / 0", "division by zero"),
    ("1 // 0", "division by zero"),
    ("1 % 0", "division by zero"),
    ("1.0 / 0.0", "division by zero"),
    ("0 ** -1", "negative power"),
    ("(-8) ** 0.5", "fractional power"),
    ("log(0)", "positive"),
    ("log(-1)", "positive"),
    ("log(8, 1)", "positive"),
    ("log2(0)", "positive"),
    ("log10(-5)", "positive"),
    ("sqrt(-1)", "negative"),
    ("exp(1000)", "exp()"),
    ("1e300 * 1e300", "overflow"),
    ("10 ** 10 ** 10", "too large"),
    ("9 ** 9 ** 9 ** 9", "too large"),
    ("2 ** 20000", "too large"),
    ("2 ** 9999 * 4", "too large"),
    ("10.0 ** 400", "too large"),
    ("0.5 ** -2000", "too large"),
    ("'a' * 10 ** 9", "unsupported operand"),
    ("'a' + 'b'", "unsupported operand"),
    ("optimizer + 1", "unsupported operand"),
    ("flag + 1", "unsupported operand"),
    ("-optimizer", "unary"),
    ("-flag", "unary"),
    ("sizes * 2", "unsupported operand"),
    ("optimizer < 1", "cannot compare 'str' with 'int'"),
    ("1 < optimizer", "cannot compare 'int' with 'str'"),
    ("sizes < [1]", "cannot compare"),
    ("nothing < 1", "cannot compare"),
    ("flag < 2", "cannot compare"),
    ("1 in optimizer", "requires a string"),
    ("1 in lora_r", "needs a list or a string"),
    ("min('a', 'b')", "needs numbers"),
    ("max(sizes, 1)", "needs numbers"),
    ("max([])", "empty list"),
    ("sqrt(optimizer)", "needs numbers"),
    ("sqrt(2 ** 9999)", "sqrt() failed"),
    ("2 ** 9999 / 3", "arithmetic error"),
]


@pytest.mark.parametrize(("text", "fragment"), EVAL_ERRORS)
def test_evaluation_errors(text: str, fragment: str) -> None:
    expr = parse_expr(text)
    with pytest.raises(ExprEvalError) as info:
        expr.evaluate(ENV)
    assert not isinstance(info.value, MissingName)
    assert fragment in info.value.message


def test_big_but_bounded_numbers() -> None:
    assert ev("2 ** 9999") == 2**9999
    assert ev("10.0 ** 299") == pytest.approx(1e299)
    assert ev("1 ** 10 ** 100") == 1
    assert ev("(-1) ** 10 ** 100") == 1


def test_non_finite_env_values_are_passed_through() -> None:
    assert ev("x + 1", {"x": math.inf}) == math.inf


def test_truthiness_errors_are_eval_errors() -> None:
    class NoBool:
        def __bool__(self) -> bool:
            raise ValueError("ambiguous")

    with pytest.raises(ExprEvalError, match="truth value"):
        ev("not v", {"v": NoBool()})
    with pytest.raises(ExprEvalError, match="truth value"):
        ev("v or 1", {"v": NoBool()})


# ---------------------------------------------------------------------------------------------
# Malicious input: rejected at parse or evaluation time, fast, with no side effects

MALICIOUS = [
    "().__class__.__bases__[0].__subclasses__()",
    "__import__('os').system('id')",
    "lora_r.__class__",
    "'{0.__class__}'.format(lora_r)",
    "[x for x in ()]",
    "lambda: 0",
    "(x:=1)",
    "f'{lora_r}'",
    "9**9**9**9",
    "10**10**10",
    "'a'*10**9",
    "(" * 10_000 + ")" * 10_000,
    "(" * 200 + "1" + ")" * 200,
    "[" * 200 + "]" * 200,
    "-" * 999 + "1",
    "not " * 249 + "x",
    "lora_alpha >= lora_r and open('/etc/passwd')",
    "__builtins__",
    "x if y else z",
    "a[0]",
    "*a",
    "b'x'",
    "1j",
    "",
    "   \n\t ",
    "x + " * 500 + "x",
    "1" * 2000,
    "1" * 999,
    "2 ** 9999 * 2 ** 9999",
    "\x00",
    "exp(exp(exp(10)))",
    "max(" * 40 + "1" + ")" * 40,
    "'\\d' == '\\d'",
    "1 is 1",
    "getattr(lora_r, '__class__')",
    "globals()",
    "breakpoint()",
]


@pytest.mark.parametrize("text", MALICIOUS)
def test_malicious_input_is_rejected_fast(text: str) -> None:
    with (
        mock.patch.object(builtins, "eval", side_effect=AssertionError("eval called")),
        mock.patch.object(builtins, "exec", side_effect=AssertionError("exec called")),
        mock.patch.object(builtins, "open", side_effect=AssertionError("open called")),
        mock.patch.object(builtins, "__import__", side_effect=AssertionError("import called")),
    ):
        start = time.perf_counter()
        outcome: object
        try:
            outcome = parse_expr(text).evaluate(ENV)
        except ExprError as e:
            outcome = e
        except ExprEvalError as e:
            outcome = e
        elapsed = time.perf_counter() - start
    assert elapsed < 0.5, f"{text[:40]!r} took {elapsed:.3f}s"
    # Only harmless texts may succeed, and then only to a plain value.
    assert isinstance(outcome, ExprError | ExprEvalError | bool | int), outcome


def test_nothing_is_ever_evaluated_or_executed() -> None:
    texts = [text for text, _ in VALID] + [text for text, _ in EVAL_ERRORS] + MALICIOUS
    with (
        mock.patch.object(builtins, "eval") as fake_eval,
        mock.patch.object(builtins, "exec") as fake_exec,
    ):
        for text in texts:
            with contextlib.suppress(ExprError, ExprEvalError):
                parse_expr(text).evaluate(ENV)
    fake_eval.assert_not_called()
    fake_exec.assert_not_called()


def test_parse_suppresses_syntax_warnings() -> None:
    # pytest runs with filterwarnings=error: a leaked SyntaxWarning would fail here.
    assert parse_expr("'\\d' == '\\d'").evaluate({}) is True
    with pytest.raises(ExprError, match="'is'"):
        parse_expr("1 is 1")


def test_non_string_input() -> None:
    with pytest.raises(ExprError, match="must be a string"):
        parse_expr(42)  # type: ignore[arg-type]


def test_unpaired_surrogate() -> None:
    with pytest.raises(ExprError, match="not valid text"):
        parse_expr("x + '\ud800'")


# ---------------------------------------------------------------------------------------------
# Properties

TOKENS = [
    "x", "y", "lr", "a.b", "a.b.c", "__x", "0", "1", "2", "1e-3", "1e308", "9", "0.5", "'s'",
    "True", "null", "+", "-", "*", "/", "//", "%", "**", "<", "<=", "==", "!=", ">", ">=",
    "and", "or", "not", "in", "not in", "is", "(", ")", "[", "]", ",", ".", "abs(", "min(",
    "max(", "log(", "log2(", "log10(", "exp(", "sqrt(", "if", "else", "lambda", ":", "[0]",
    "__class__", "j", "'", '"', "\\", "{", "}", "=", ":=", "f'", "b'", "@", "~", " ", "\n",
]  # fmt: skip
token_text = st.lists(st.sampled_from(TOKENS), max_size=40).map(" ".join)
regex_text = st.from_regex(
    r"\A[-+ ]{0,3}(\(|abs\(|max\()?[a-z0-9.]{1,8}( ?(\*\*|//|[-+*/%<>]|==|and|or) ?"
    r"[a-z0-9.()]{1,8}){0,6}\)?\Z"
)
numbers_st = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=True, allow_infinity=True),
)


def _parse_or_none(text: str) -> Expr | None:
    try:
        return parse_expr(text)
    except ExprError as e:
        assert isinstance(e.message, str)
        assert isinstance(e.col, int)
        assert 1 <= e.col <= len(text) + 1
        return None


@settings(max_examples=300, deadline=2000)
@given(st.text(max_size=200))
def test_any_text_parses_or_raises_expr_error(text: str) -> None:
    _parse_or_none(text)


@settings(max_examples=300, deadline=2000)
@given(
    st.one_of(token_text, regex_text),
    st.dictionaries(
        st.sampled_from(["x", "y", "lr", "a.b", "a.b.c", "a", "b", "c", "z"]), numbers_st
    ),
)
def test_expression_like_text_parses_and_evaluates_safely(
    text: str, env: dict[str, object]
) -> None:
    start = time.perf_counter()
    expr = _parse_or_none(text)
    if expr is not None:
        assert expr.names() == frozenset(expr.name_columns())
        try:
            expr.evaluate(env)
        except MissingName as e:
            assert e.name in expr.names()
            assert e.name not in env
        except ExprEvalError:
            pass
    assert time.perf_counter() - start < 0.5


arith_leaf = st.one_of(
    st.integers(min_value=-100, max_value=100).map(str),
    st.sampled_from(["x", "y", "a.b"]),
)


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "//", "%", "**", "/"]), children)
    return st.one_of(
        binary.map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        children.map(lambda c: f"-({c})"),
        st.tuples(st.sampled_from(["abs", "max", "min"]), children).map(
            lambda t: f"{t[0]}({t[1]})"
        ),
    )


@settings(max_examples=300, deadline=2000)
@given(
    st.recursive(arith_leaf, _combine, max_leaves=25),
    st.integers(min_value=-1000, max_value=1000),
    st.integers(min_value=-1000, max_value=1000),
    st.floats(min_value=-1e6, max_value=1e6),
)
def test_generated_arithmetic_always_parses(text: str, x: int, y: int, ab: float) -> None:
    expr = parse_expr(text)
    start = time.perf_counter()
    try:
        value = expr.evaluate({"x": x, "y": y, "a.b": ab})
    except MissingName:  # pragma: no cover - every name is bound
        raise
    except ExprEvalError:
        return
    assert time.perf_counter() - start < 0.5
    assert isinstance(value, int | float)
    assert not isinstance(value, bool)
    if isinstance(value, int):
        assert value.bit_length() <= 10_000


@pytest.mark.parametrize(("text", "col"), [("\uff4c\uff52 < 1", 1), ("x < 1 and \u0430 > 0", 11)])
def test_look_alike_letters_are_refused_not_folded(text: str, col: int) -> None:
    """Python would read fullwidth ``lr`` as ``lr`` (NFKC) and Cyrillic ``a`` as a new name."""
    with pytest.raises(ExprError) as info:
        parse_expr(text)
    assert "plain ASCII" in info.value.message and info.value.col == col
    assert parse_expr("opt == '\uff41\uff44'").names() == {"opt"}  # quoted text: anything
