"""Tests for the safe YAML reader (:mod:`sweepspec.spec.source`)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from sweepspec.errors import Location, Problem, SweepspecError
from sweepspec.spec.source import MAX_BYTES, MAX_DEPTH, MAX_NODES, SourceMap, load_yaml
from tests.conftest import unavailable

F = "spec.yaml"


def problems(text: str | bytes) -> list[Problem]:
    with pytest.raises(SweepspecError) as info:
        load_yaml(text, F)
    return info.value.problems


def only_problem(text: str | bytes) -> Problem:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


def at(line: int, col: int) -> Location:
    return Location(F, line, col)


def assert_plain(data: Any) -> None:
    """Only dict (with str keys) / list / str / int / float / bool / None."""
    if isinstance(data, dict):
        for key, value in data.items():
            assert type(key) is str
            assert_plain(value)
    elif isinstance(data, list):
        for item in data:
            assert_plain(item)
    else:
        assert data is None or type(data) in (str, int, float, bool)


# --------------------------------------------------------------------------- scalars

SCALARS: list[tuple[str, Any]] = [
    # ints (YAML 1.2 core)
    ("0", 0),
    ("42", 42),
    ("-7", -7),
    ("+3", 3),
    ("0755", 755),
    ("0o17", 15),
    ("0x1F", 31),
    ("0xff", 255),
    # floats
    ("1e-3", 0.001),
    ("1E5", 100000.0),
    ("1.0e-3", 0.001),
    (".5", 0.5),
    ("-.5", -0.5),
    ("1.", 1.0),
    ("3.25", 3.25),
    ("+1.5e+2", 150.0),
    (".inf", math.inf),
    (".Inf", math.inf),
    ("+.INF", math.inf),
    ("-.inf", -math.inf),
    # booleans: only the 1.2 core spellings
    ("true", True),
    ("True", True),
    ("TRUE", True),
    ("false", False),
    ("False", False),
    ("FALSE", False),
    # null
    ("~", None),
    ("null", None),
    ("Null", None),
    ("NULL", None),
    ("", None),
    # strings: YAML 1.1 booleans, sexagesimal, dates, odd numbers
    ("yes", "yes"),
    ("no", "no"),
    ("on", "on"),
    ("off", "off"),
    ("y", "y"),
    ("n", "n"),
    ("Yes", "Yes"),
    ("1:30", "1:30"),
    ("2026-01-01", "2026-01-01"),
    ("2026-01-01 10:00:00", "2026-01-01 10:00:00"),
    ("1_000", "1_000"),
    ("0b101", "0b101"),
    ("0o", "0o"),
    ("1e", "1e"),
    ("nan", "nan"),
    ("inf", "inf"),
    ("tRUE", "tRUE"),
    ("nULL", "nULL"),
    ("adam", "adam"),
    # quoted scalars are always strings
    ("'1'", "1"),
    ('"1e-3"', "1e-3"),
    ("'true'", "true"),
    ("'null'", "null"),
    ("''", ""),
    ('"~"', "~"),
    # explicit standard tags
    ("!!str 1", "1"),
    ("!!int '12'", 12),
    ("!!float 1", 1.0),
    ("!!bool 'true'", True),
    ("!!null ''", None),
    ("! 12", "12"),
]


@pytest.mark.parametrize(("text", "expected"), SCALARS)
def test_scalar_resolution(text: str, expected: Any) -> None:
    data, _ = load_yaml(f"v: {text}\n", F)
    value = data["v"]
    assert type(value) is type(expected)
    assert value == expected


@pytest.mark.parametrize("text", [".nan", ".NaN", ".NAN"])
def test_nan(text: str) -> None:
    data, _ = load_yaml(f"v: {text}\n", F)
    assert isinstance(data["v"], float)
    assert math.isnan(data["v"])


def test_one_e_minus_three_is_a_float() -> None:
    data, _ = load_yaml("lr: 1e-3\n", F)
    assert data == {"lr": 0.001}
    assert isinstance(data["lr"], float)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("!!bool yes", "'yes' is not a valid !!bool"),
        ("!!int 1.5", "'1.5' is not a valid !!int"),
        ("!!float abc", "'abc' is not a valid !!float"),
        ("!!null 0", "'0' is not a valid !!null"),
    ],
)
def test_explicit_standard_tag_must_fit(text: str, message: str) -> None:
    problem = only_problem(f"v: {text}\n")
    assert (problem.code, problem.message, problem.path) == ("bad-scalar", message, "v")
    assert problem.location == at(1, 4)


def test_huge_integer_is_a_problem_not_a_crash() -> None:
    problem = only_problem("v: " + "9" * 5000 + "\n")
    assert problem.code == "bad-scalar"
    assert problem.path == "v"


def test_data_is_plain_and_ordered() -> None:
    text = "b: 1\na: [x, {c: 2.5, d: null}]\nc: {z: true, y: ~}\n"
    data, _ = load_yaml(text, F)
    assert_plain(data)
    assert list(data) == ["b", "a", "c"]
    assert list(data["c"]) == ["z", "y"]
    assert data == {"b": 1, "a": ["x", {"c": 2.5, "d": None}], "c": {"z": True, "y": None}}


# --------------------------------------------------------------------------- keys


def test_duplicate_key_top_level() -> None:
    problem = only_problem("name: a\nlr: 1\nlr: 2\n")
    assert problem.code == "duplicate-key"
    assert problem.message == "duplicate key 'lr' (first defined at line 2)"
    assert problem.path == "lr"
    assert problem.location == at(3, 1)


def test_duplicate_key_nested() -> None:
    text = "search:\n  opt:\n    lr: 1\n    momentum: 0.9\n    lr: 3\n"
    problem = only_problem(text)
    assert problem.message == "duplicate key 'lr' (first defined at line 3)"
    assert problem.path == "search.opt.lr"
    assert problem.location == at(5, 5)


def test_every_duplicate_is_reported_sorted() -> None:
    text = (
        "a: 1\n"
        "b:\n"
        "  - {x: 1, x: 2}\n"  # flow mapping in a list
        "  - y: 1\n"
        "    y: 2\n"
        "a: 3\n"
        "'a': 4\n"  # quoted: the same string key
    )
    found = problems(text)
    assert [(p.path, p.location) for p in found] == [
        ("b.0.x", at(3, 12)),
        ("b.1.y", at(5, 5)),
        ("a", at(6, 1)),
        ("a", at(7, 1)),
    ]
    assert all(p.code == "duplicate-key" for p in found)
    assert found[-1].message == "duplicate key 'a' (first defined at line 1)"


def test_duplicates_inside_a_duplicated_value_are_reported() -> None:
    found = problems("a: {x: 1}\na: {y: 1, y: 2}\n")
    assert [(p.path, p.location) for p in found] == [("a", at(2, 1)), ("a.y", at(2, 11))]


@pytest.mark.parametrize(
    ("text", "col"),
    [("1: a\n", 1), ("true: a\n", 1), ("null: a\n", 1), ("~: a\n", 1), ("x: {2.5: a}\n", 5)],
)
def test_keys_must_be_strings(text: str, col: int) -> None:
    problem = only_problem(text)
    assert problem.code == "key-type"
    assert problem.message.startswith("keys must be strings")
    assert problem.location == at(1, col)


def test_key_type_message() -> None:
    problem = only_problem("search:\n  1e-3: x\n")
    assert (
        problem.message == "keys must be strings (got the float 1e-3; quote it to make it a string)"
    )
    assert (problem.path, problem.location) == ("search.1e-3", at(2, 3))


def test_complex_key_is_rejected() -> None:
    problem = only_problem("? [a, b]\n: 1\n")
    assert (problem.code, problem.message) == ("key-type", "keys must be strings (got a sequence)")


def test_quoted_and_tagged_keys_are_strings() -> None:
    data, _ = load_yaml("'1': a\n!!str true: b\n\"null\": c\n", F)
    assert data == {"1": "a", "true": "b", "null": "c"}


def test_merge_key_is_rejected() -> None:
    text = "base: &b {lr: 1}\nrun:\n  <<: *b\n  seed: 1\n"
    problem = only_problem(text)
    assert problem.code == "merge-key"
    assert problem.message == "YAML merge keys ('<<') are not supported; use 'extends:'"
    assert (problem.path, problem.location) == ("run.<<", at(3, 3))


# --------------------------------------------------------------------------- tags


@pytest.mark.parametrize(
    ("text", "tag"),
    [
        ("!!python/object/apply:os.system ['echo hi']", "!!python/object/apply:os.system"),
        ("!!python/name:os.system", "!!python/name:os.system"),
        ("!!python/object:collections.OrderedDict {}", "!!python/object:collections.OrderedDict"),
        ("!include other.yaml", "!include"),
        ("!env HOME", "!env"),
        ("!!binary aGVsbG8=", "!!binary"),
        ("!!set {a, b}", "!!set"),
        ("!!timestamp 2026-01-01", "!!timestamp"),
        ("!!omap [a: 1, b: 2]", "!!omap"),
        ("!<tag:example.com,2000:thing> x", "tag:example.com,2000:thing"),
    ],
)
def test_tags_are_rejected(text: str, tag: str) -> None:
    problem = only_problem(f"name: demo\nvalue: {text}\n")
    assert problem.code == "tag"
    assert problem.message == f"YAML tags are not allowed (got '{tag}')"
    assert (problem.path, problem.location) == ("value", at(2, 8))


def test_tag_on_a_key_and_in_a_list_all_reported() -> None:
    found = problems("!env K: 1\nl: [1, !!binary eA==]\n")
    assert [(p.code, p.location) for p in found] == [("tag", at(1, 1)), ("tag", at(2, 8))]


def test_standard_tag_on_the_wrong_kind() -> None:
    problem = only_problem("a: !!map [1, 2]\n")
    assert problem.code == "tag"
    assert problem.message == "YAML tag '!!map' cannot be used on a sequence"


def test_python_tags_never_execute(tmp_path: Path) -> None:
    target = tmp_path / "pwned"
    texts = [
        f"x: !!python/object/apply:os.system ['touch {target}']\n",
        f"!!python/object/apply:os.system ['touch {target}']\n",
        f"x: !!python/object/apply:subprocess.call [[touch, {target}]]\n",
        f"x: !!python/object/new:os.system ['touch {target}']\n",
    ]
    for text in texts:
        assert only_problem(text).code == "tag"
    assert not target.exists()


# --------------------------------------------------------------------------- aliases


def test_aliases_expand_to_independent_copies() -> None:
    text = "base: &b {lr: 0.1, layers: [1, 2]}\nother: *b\n"
    data, source = load_yaml(text, F)
    assert data["other"] == data["base"] == {"lr": 0.1, "layers": [1, 2]}
    data["other"]["layers"].append(3)
    assert data["base"]["layers"] == [1, 2]
    assert source.value(("other",)) == at(2, 8)  # where the alias is written
    assert source.value(("other", "lr")) == at(1, 15)  # inside: the anchored text


def test_billion_laughs_is_rejected_fast() -> None:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    previous = "a"
    for name in "bcdefghi":
        refs = ", ".join([f"*{previous}"] * 9)
        lines.append(f"{name}: &{name} [{refs}]")
        previous = name
    text = "\n".join(lines) + "\n"
    start = time.perf_counter()
    problem = only_problem(text)
    elapsed = time.perf_counter() - start
    assert problem.code == "alias-bomb"
    assert problem.message == (
        f"too many YAML nodes (aliases expand to more than {MAX_NODES}); is this an alias bomb?"
    )
    assert problem.location is not None and problem.location.line >= 1
    assert elapsed < 1.0


def test_many_aliases_within_the_bound_are_fine() -> None:
    text = "a: &a [1, 2, 3, 4, 5, 6, 7, 8, 9]\nb: [" + ", ".join(["*a"] * 100) + "]\n"
    data, _ = load_yaml(text, F)
    assert len(data["b"]) == 100


@pytest.mark.parametrize("text", ["a: &a [*a]\n", "a: &a {b: *a}\n", "&r [x, {y: *r}]\n"])
def test_recursive_alias_is_an_error_not_a_hang(text: str) -> None:
    problem = only_problem(text)
    assert problem.code == "alias-loop"
    assert problem.location is not None and problem.location.line == 1


def test_undefined_alias_is_a_syntax_error() -> None:
    problem = only_problem("a: *nope\n")
    assert problem.code == "syntax"
    assert "undefined alias" in problem.message
    assert problem.location == at(1, 4)


# --------------------------------------------------------------------------- depth


def test_nesting_at_the_limit_is_fine() -> None:
    data, _ = load_yaml("[" * MAX_DEPTH + "]" * MAX_DEPTH, F)
    for _ in range(MAX_DEPTH - 1):
        data = data[0]
    assert data == []


def test_nesting_one_past_the_limit() -> None:
    problem = only_problem("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert (problem.code, problem.message) == (
        "too-deep",
        f"nesting deeper than {MAX_DEPTH} levels",
    )
    assert problem.location == at(1, MAX_DEPTH + 1)


def test_ten_thousand_flow_brackets() -> None:
    start = time.perf_counter()
    problem = only_problem("[" * 10_000 + "]" * 10_000)
    assert time.perf_counter() - start < 1.0
    assert problem.code == "too-deep"
    assert problem.location is not None and problem.location.line == 1


def test_ten_thousand_unclosed_flow_brackets() -> None:
    problem = only_problem("{a: " * 10_000)
    assert problem.code in ("too-deep", "syntax")


def test_two_hundred_block_levels() -> None:
    text = "".join("  " * level + f"k{level}:\n" for level in range(200)) + "  " * 200 + "x\n"
    problem = only_problem(text)
    assert problem.code == "too-deep"
    assert problem.location == at(MAX_DEPTH + 1, 2 * MAX_DEPTH + 1)
    assert problem.path == ".".join(f"k{level}" for level in range(MAX_DEPTH))


def test_deep_through_aliases() -> None:
    inner = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    load_yaml(f"a: &a {inner}\n", F)  # 64 levels with the root mapping: fine
    problem = only_problem(f"a: &a {inner}\nb: [*a]\n")
    assert problem.code == "too-deep"
    assert problem.path.startswith("b.0")


# --------------------------------------------------------------------------- documents & bytes


def test_multi_document() -> None:
    problem = only_problem("a: 1\n---\nb: 2\n")
    assert problem.code == "multi-document"
    assert problem.message == "a spec is one YAML document, but this file has several"
    assert problem.location == at(2, 1)


def test_explicit_single_document_is_fine() -> None:
    data, source = load_yaml("---\na: 1\n...\n", F)
    assert data == {"a": 1}
    assert source.key(("a",)) == at(2, 1)


@pytest.mark.parametrize("text", ["", "\n\n", "# only\n# comments\n", b"", "\ufeff", "---\n"])
def test_empty_document(text: str | bytes) -> None:
    data, source = load_yaml(text, F)
    assert data is None
    assert source.locate(()) == at(1, 1)
    assert source.locate(("a", "b")) == at(1, 1)


@pytest.mark.parametrize("text", [b"\xef\xbb\xbfa: 1\nb: x\n", "\ufeffa: 1\nb: x\n"])
def test_bom_is_stripped(text: str | bytes) -> None:
    data, source = load_yaml(text, F)
    assert data == {"a": 1, "b": "x"}
    assert source.key(("a",)) == at(1, 1)
    assert source.value(("b",)) == at(2, 4)


def test_crlf_and_tabs_in_scalars() -> None:
    data, source = load_yaml(b"a: 1\r\nb:\r\n  c: 'x\ty'\r\n  d: p\tq\r\n", F)
    assert data == {"a": 1, "b": {"c": "x\ty", "d": "p\tq"}}
    assert source.key(("b", "d")) == at(4, 3)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a: p\tq\n", {"a": "p\tq"}),  # a tab inside a plain scalar
        ("a: b\t\n", {"a": "b"}),  # trailing tabs
        ("a: b\t# note\n", {"a": "b"}),
        ("a: 'x'\t\nb: [1]\t\n", {"a": "x", "b": [1]}),
        ("a: b\n\t\nc: d\n", {"a": "b", "c": "d"}),  # a line of only a tab
        ("k: {a:\t1,\tb: 2}\n", {"k": {"a": 1, "b": 2}}),  # flow context
        ("a: |\n  p\tq\n", {"a": "p\tq\n"}),
    ],
)
def test_tabs_that_are_not_indentation(text: str, expected: Any) -> None:
    assert load_yaml(text, F)[0] == expected


@pytest.mark.parametrize(
    ("text", "where"),
    [("a:\n\tb: 1\n", (2, 1)), ("a:\n  b: 1\n\tc: 2\n", (3, 1)), ("-\tx\n", (1, 2))],
)
def test_tabs_as_indentation_are_syntax_errors(text: str, where: tuple[int, int]) -> None:
    problem = only_problem(text)
    assert problem.code == "syntax"
    assert problem.location == at(*where)


def test_tab_indentation_is_a_syntax_error() -> None:
    problem = only_problem("a:\n\tb: 1\n")
    assert problem.code == "syntax"
    assert problem.message.startswith("invalid YAML: ")
    assert "tab" in problem.message
    assert problem.location == at(2, 1)


def test_syntax_error_position_and_message() -> None:
    problem = only_problem("name: demo\nx: b: c\n")
    assert problem.code == "syntax"
    assert problem.message == "invalid YAML: mapping values are not allowed here"
    assert problem.location == at(2, 5)


def test_control_character_is_a_syntax_error() -> None:
    problem = only_problem("a: 1\nb: x\x00y\n")
    assert problem.code == "syntax"
    assert problem.location == at(2, 5)


def test_invalid_utf8() -> None:
    problem = only_problem(b"a: 1\nb: caf\xe9\n")
    assert problem.code == "not-utf8"
    assert "byte offset 11" in problem.message
    assert problem.location == at(2, 7)


def test_too_large() -> None:
    big = b"a: " + b"x" * MAX_BYTES + b"\n"
    problem = only_problem(big)
    assert problem.code == "too-large"
    assert problem.location == at(1, 1)
    assert only_problem(big.decode()).code == "too-large"
    # multi-byte characters count as bytes
    assert only_problem("é" * (MAX_BYTES // 2 + 1)).code == "too-large"


def test_problem_from_several_kinds_are_all_listed() -> None:
    text = "a: !env X\nb: 1\nb: 2\n3: x\n"
    assert [p.code for p in problems(text)] == ["tag", "duplicate-key", "key-type"]


# --------------------------------------------------------------------------- source map

SPEC = """\
# a realistic spec
sweepspec: 1
name: mnist-lr
objective:
  metric: val/loss
  mode: min
search:
  lr: {distribution: loguniform, low: 1e-5, high: 1e-1}
  layers: [64, 128]
  optimizer:
    choice:
      - name: adam
        betas: [0.9, 0.999]
      - name: sgd
        momentum: 0.9
budget:
  trials: 50
  timeout: 2h
"""


def test_positions_in_a_realistic_spec() -> None:
    data, source = load_yaml(SPEC, F)
    assert data["search"]["lr"]["low"] == 1e-5
    assert source.key(("sweepspec",)) == at(2, 1)
    assert source.value(("sweepspec",)) == at(2, 12)
    assert source.key(("objective", "mode")) == at(6, 3)
    assert source.value(("objective", "mode")) == at(6, 9)
    assert source.key(("search", "lr")) == at(8, 3)
    assert source.value(("search", "lr")) == at(8, 7)
    assert source.key(("search", "lr", "high")) == at(8, 45)
    assert source.value(("search", "lr", "high")) == at(8, 51)
    assert source.value(("search", "layers", 1)) == at(9, 16)
    assert source.key(("search", "optimizer", "choice", 1)) == at(14, 9)
    assert source.value(("search", "optimizer", "choice", 1, "momentum")) == at(15, 19)
    assert source.value(("budget", "timeout")) == at(18, 12)
    assert source.value(()) == at(2, 1)
    assert source.key(("nope",)) is None
    assert source.value(("search", "nope")) is None
    assert source.file == F


def test_paths_lists_every_entry_in_order() -> None:
    _, source = load_yaml("a: 1\nb: [x, {c: 2}]\n", F)
    assert list(source.paths()) == [(), ("a",), ("b",), ("b", 0), ("b", 1), ("b", 1, "c")]


def test_locate() -> None:
    _, source = load_yaml(SPEC, F)
    assert source.locate(("name",)) == at(3, 7)  # scalar: its value
    assert source.locate(("search", "lr")) == at(8, 7)  # flow mapping: its value
    assert source.locate(("search", "layers")) == at(9, 11)  # flow sequence: its value
    assert source.locate(("search",)) == at(7, 1)  # block mapping: its key
    assert source.locate(("search", "optimizer", "choice")) == at(11, 5)  # block sequence
    assert source.locate(("search", "optimizer", "choice", 0)) == at(12, 9)
    # missing paths: the nearest existing ancestor
    assert source.locate(("search", "lr", "nope")) == at(8, 7)
    assert source.locate(("search", "nope", "deeper")) == at(7, 1)
    assert source.locate(("budget", "trials", "x")) == at(17, 11)
    assert source.locate(("nope",)) == at(1, 1)
    assert source.locate(()) == at(1, 1)


def test_locate_empty_value_points_after_the_colon() -> None:
    _, source = load_yaml("a:\nb: 1\n", F)
    assert source.locate(("a",)) == at(1, 3)


def test_merged() -> None:
    _, base = load_yaml("a: 1\nb:\n  c: 2\n  d: 3\n", "base.yaml")
    _, spec = load_yaml("x: 0\nb:\n  c: 9\n", "spec.yaml")
    both = base.merged(spec)
    assert both.value(("b", "c")) == Location("spec.yaml", 3, 6)  # overridden
    assert both.value(("b", "d")) == Location("base.yaml", 4, 6)  # kept
    assert both.value(("a",)) == Location("base.yaml", 1, 4)
    assert both.value(("x",)) == Location("spec.yaml", 1, 4)
    assert both.locate(("b", "d", "missing")) == Location("base.yaml", 4, 6)
    assert both.locate(("missing",)) == Location("spec.yaml", 1, 1)  # the spec's root
    # the originals are unchanged
    assert base.value(("x",)) is None
    assert spec.value(("b", "d")) is None


def test_merged_with_prefix() -> None:
    _, outer = load_yaml("search:\n  lr: 1\n", "spec.yaml")
    _, inner = load_yaml("low: 1\nhigh: 2\n", "part.yaml")
    both = outer.merged(inner, ("search", "lr"))
    assert both.value(("search", "lr", "high")) == Location("part.yaml", 2, 7)
    assert both.value(("search",)) == Location("spec.yaml", 2, 3)


def test_single_for_command_line_overrides() -> None:
    where = Location("<command line>", 0, 0)
    override = SourceMap.single(where, [("search", "lr"), ("search", "lr", "low")])
    assert override.key(("search", "lr")) == where
    assert override.value(("search", "lr", "low")) == where
    assert override.locate(("search", "lr", "low", "x")) == where
    assert set(override.paths()) == {("search", "lr"), ("search", "lr", "low")}
    _, spec = load_yaml("search:\n  lr: 1\n  seed: 2\n", F)
    both = spec.merged(override)
    assert both.locate(("search", "lr")) == where
    assert both.locate(("search", "seed")) == at(3, 9)


# --------------------------------------------------------------------------- never crash


def _check_never_crashes(text: str | bytes) -> None:
    try:
        data, source = load_yaml(text, F)
    except SweepspecError as exc:
        assert exc.problems
        for problem in exc.problems:
            assert problem.location is not None
            assert problem.location.line >= 1
            assert problem.location.col >= 1
    else:
        assert_plain(data)
        for path in source.paths():
            assert source.locate(path).line >= 1


@settings(max_examples=300, deadline=2000)
@given(st.text())
def test_arbitrary_text_never_crashes(text: str) -> None:
    _check_never_crashes(text)


@settings(max_examples=300, deadline=2000)
@given(st.binary())
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    _check_never_crashes(data)


YAMLISH = st.text(alphabet=list("ab01.-+eE:,[]{}#&*!|>'\"?~ \t\n\r"), max_size=80)


@settings(max_examples=300, deadline=2000)
@given(YAMLISH)
def test_yaml_like_text_never_crashes(text: str) -> None:
    _check_never_crashes(text)


LETTERS = st.text(alphabet="abcxyz", max_size=6)
PLAIN = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=True)
    | LETTERS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(LETTERS, inner, max_size=4),
    max_leaves=20,
)


def _all_paths(data: Any, path: tuple[str | int, ...] = ()) -> list[tuple[str | int, ...]]:
    found = [path]
    items = (
        data.items()
        if isinstance(data, dict)
        else enumerate(data)
        if isinstance(data, list)
        else []
    )
    for key, value in items:
        found += _all_paths(value, (*path, key))
    return found


@settings(max_examples=200, deadline=2000)
@given(PLAIN, st.booleans())
def test_dumped_plain_data_reads_back_with_every_path_located(data: Any, flow: bool) -> None:
    text = yaml.safe_dump(data, default_flow_style=flow, sort_keys=False)
    loaded, source = load_yaml(text, F)
    assert loaded == data
    lines = text.splitlines()
    for path in _all_paths(data):
        key, value = source.key(path), source.value(path)
        assert key is not None and value is not None, path
        assert 1 <= key.line <= max(len(lines), 1)
        assert 1 <= value.line <= max(len(lines), 1)


# -- libyaml (fast path) and PyYAML's Python parser agree ---------------------------------

REPO = Path(__file__).resolve().parents[2]
_NO_LIBYAML = not getattr(yaml, "__with_libyaml__", False)


def _outcome(text: str, fast: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    """load_yaml's data and source map, or its problems, on one of the two parsers."""
    from sweepspec.spec import source as yamlsrc

    with monkeypatch.context() as m:
        if not fast:
            m.setattr(yamlsrc, "CParser", None)
        try:
            data, source = load_yaml(text, F)
        except SweepspecError as exc:
            return ("error", [(p.message, p.path, p.location) for p in exc.problems])
        located = {p: (source.key(p), source.value(p)) for p in source.paths()}
        return ("ok", data, located)


def _same(a: Any, b: Any) -> bool:  # NaN-aware equality of outcomes
    return repr(a) == repr(b)


@pytest.mark.skipif(_NO_LIBYAML, reason="PyYAML without libyaml")
@pytest.mark.parametrize(
    "path",
    sorted((REPO / "sweeps").glob("*.yaml")) + sorted((REPO / "tests/data/invalid").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_libyaml_reads_every_example_exactly_as_the_python_parser(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = path.read_text(encoding="utf-8")
    assert _same(_outcome(text, True, monkeypatch), _outcome(text, False, monkeypatch))


@pytest.mark.skipif(_NO_LIBYAML, reason="PyYAML without libyaml")
@settings(max_examples=300, deadline=2000)
@given(st.one_of(YAMLISH, PLAIN.map(lambda d: yaml.safe_dump(d, sort_keys=False))))
def test_libyaml_and_the_python_parser_agree_on_any_text(text: str) -> None:
    mp = pytest.MonkeyPatch()
    try:
        assert _same(_outcome(text, True, mp), _outcome(text, False, mp))
    finally:
        mp.undo()


def test_the_fast_path_is_taken_for_plain_ascii(monkeypatch: pytest.MonkeyPatch) -> None:
    from sweepspec.spec import source as yamlsrc

    if yamlsrc.CParser is None:
        unavailable("PyYAML without libyaml")
    calls: list[str] = []
    real = yamlsrc._FastLoader.__init__

    def spy(self: Any, text: str, file: str) -> None:
        calls.append(file)
        real(self, text, file)

    monkeypatch.setattr(yamlsrc._FastLoader, "__init__", spy)
    load_yaml("a: 1\nb: [x, y]\n", "plain.yaml")
    load_yaml("a: 1\t# note\n", "tab.yaml")  # a tab: the Python parser only
    load_yaml("a: é\n", "utf8.yaml")  # non-ASCII: columns would differ
    assert calls == ["plain.yaml"]


@pytest.mark.skipif(_NO_LIBYAML, reason="PyYAML without libyaml")
def test_libyaml_and_the_python_parser_agree_on_mutated_examples() -> None:
    """Seeded random edits of the example specs (the kind of text a user writes): the same
    data, the same positions, the same problems, whichever parser reads it."""
    import random

    texts = [p.read_text(encoding="utf-8") for p in sorted((REPO / "sweeps").glob("*.yaml"))]
    pieces = [*"ab01.-+eE:,[]{}#&*!|>'\"~%@`\\ \n-", "  ", "\n  ", ": ", "- "]
    rng = random.Random(7)
    mp = pytest.MonkeyPatch()
    try:
        for _ in range(400):
            text = rng.choice(texts)
            for _ in range(rng.randint(1, 4)):
                i = rng.randrange(len(text) + 1)
                op = rng.random()
                if op < 0.4:
                    text = text[:i] + rng.choice(pieces) + text[i:]
                elif op < 0.7:
                    text = text[:i] + text[i + 1 :]
                else:
                    j = rng.randrange(len(text) + 1)
                    text = text[:i] + text[j : j + 5] + text[i:]
            assert _same(_outcome(text, True, mp), _outcome(text, False, mp)), text
    finally:
        mp.undo()
