"""Fuzzing with an oracle: every shipped spec, mutated at one place into a spec that is invalid
by construction, is rejected with a problem located at the line of the mutation.

The oracle knows why each mutation is invalid, independently of sweepspec's own source map
(the sites and their lines come from PyYAML's node positions):

- a key of a fixed section (``trials``, ``scheduler``, a distribution's options, ...)
  misspelt: no such key;
- a number of a fixed section, a stop threshold or a distribution's option replaced by a word,
  NaN or a mapping: no such number;
- a flag replaced by a word; an enumerated word (``mode``, ``type``, ``max_concurrent``, a
  duration) replaced by one that is none of its values;
- a key line written twice: a duplicate key, at the second line.

(``tests/spec/test_read.py`` fuzzes the same specs without an oracle: whatever the text, a
located error or a spec, never a traceback.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweepspec.errors import SweepspecError
from sweepspec.load import load_text
from tests.builders import REPO

CORPUS = sorted(
    p
    for p in [*(REPO / "sweeps").glob("*.yaml"), *(REPO / "tests/data/valid").glob("*.yaml")]
    if not p.name.startswith("_") and p.name != "storage_env.yaml"  # (reads the environment)
)

#: sections whose keys are the schema's own (a misspelt key there is no key at all)
FIXED = {
    "", "objective", "searcher", "scheduler", "stop", "stop.sweep", "trials", "resources",
    "resources.per_trial", "backend", "tracking", "tracking.mlflow",
}  # fmt: skip
#: sections whose values must be numbers whatever their keys (metric names)
THRESHOLDS = ("stop.trial", "stop.sweep.target")
DISTRIBUTIONS = {"uniform", "loguniform", "int", "choice", "grid", "normal", "quniform"}
ENUMS = {"mode", "type", "max_concurrent", "time_budget", "timeout"}  # (time_attr: any metric)
PLAIN = re.compile(r"[^,\s}\]#]+")


@dataclass(frozen=True)
class Site:
    """One scalar of a spec: its key path, the key's and the value's 0-based positions."""

    path: tuple[str, ...]
    key: str
    value: Any
    key_at: tuple[int, int]
    value_at: tuple[int, int]
    block: bool  # the key starts its line (a block mapping), not inside a {flow} mapping

    @property
    def parent(self) -> str:
        return ".".join(self.path)

    @property
    def in_distribution(self) -> bool:
        return len(self.path) >= 2 and self.path[0] == "space" and self.key not in DISTRIBUTIONS


TYPES = {"int": int, "float": float, "bool": bool}


def _scalar(node: yaml.ScalarNode) -> Any:
    kind = TYPES.get(node.tag.rsplit(":", 1)[-1])
    return {int: 1, float: 1.0, bool: True}[kind] if kind else node.value


def _sites(node: yaml.Node, path: tuple[str, ...], lines: list[str]) -> list[Site]:
    out: list[Site] = []
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            out += _sites(item, path, lines)
    if not isinstance(node, yaml.MappingNode):
        return out
    keys = {k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)}
    is_distribution = bool(DISTRIBUTIONS & keys)
    for key, value in node.value:
        if not isinstance(key, yaml.ScalarNode):
            continue
        out += _sites(value, (*path, key.value), lines)
        if path and path[0] == "space" and not is_distribution:
            continue  # a parameter's name, or a nested group's: the user's own
        if path and path[0] in ("try_first", "derived", "constraints"):
            continue
        key_at = (key.start_mark.line, key.start_mark.column)
        value_at = (value.start_mark.line, value.start_mark.column)
        block = lines[key_at[0]][: key_at[1]].strip() in ("", "-")
        plain = isinstance(value, yaml.ScalarNode) and value.style is None
        out.append(
            Site(path, key.value, _scalar(value) if plain else value, key_at, value_at, block)
        )
    return out


def _corpus() -> list[tuple[Path, str, list[Site]]]:
    out = []
    for path in CORPUS:
        text = path.read_text()
        out.append((path, text, _sites(yaml.compose(text, yaml.SafeLoader), (), text.splitlines())))
    return out


SPECS = _corpus()


def _replace_value(text: str, site: Site, new: str) -> str:
    lines = text.splitlines(keepends=True)
    row, col = site.value_at
    line = lines[row]
    match = PLAIN.match(line, col)
    assert match is not None, (line, col)
    lines[row] = line[:col] + new + line[match.end() :]
    return "".join(lines)


def _referenced(text: str, site: Site) -> bool:
    """Whether an interpolation names the key (misspelt, it fails there first, rightly)."""
    dotted = ".".join((*site.path, site.key))
    return any(ref == dotted or ref.startswith(dotted + ".") for ref in REFERENCE.findall(text))


REFERENCE = re.compile(r"\$\{([\w.]+)\}")


def _mutations(text: str, site: Site) -> list[tuple[str, str]]:
    """(kind, replacement) pairs that make ``site`` invalid by construction."""
    out: list[tuple[str, str]] = []
    fixed = site.parent in FIXED or site.in_distribution
    if fixed and site.key != "sweepspec" and not _referenced(text, site):
        out.append(("key", site.key + "_x"))
    number = isinstance(site.value, int | float) and not isinstance(site.value, bool)
    threshold = site.parent.startswith(THRESHOLDS)
    if number and (fixed or threshold):
        out += [("value", "ten"), ("value", ".nan"), ("value", "{a: 1}")]
    if isinstance(site.value, bool) and fixed:
        out.append(("value", "maybe"))
    if isinstance(site.value, str) and fixed and site.key in ENUMS:
        out.append(("value", "Bogus9"))
    return out


CASES = [
    (path, text, site, kind, new)
    for path, text, sites in SPECS
    for site in sites
    for kind, new in _mutations(text, site)
]
DUPLICABLE = [
    (path, text, site)
    for path, text, sites in SPECS
    for site in sites
    if site.block and not isinstance(site.value, yaml.Node) and site.key_at[0] == site.value_at[0]
]


def _rejected_at(text: str, path: Path, line: int) -> list[str]:
    with pytest.raises(SweepspecError) as info:
        load_text(text, str(path), spec_path=path, feasibility=False)
    rendered = [p.render() for p in info.value.problems]
    lines = [p.location.line for p in info.value.problems if p.location is not None]
    assert line in lines, f"expected a problem at line {line}:\n" + "\n".join(rendered)
    assert any(r.startswith(f"{path}:{line}:") for r in rendered)
    return rendered


def test_the_corpus_is_valid_and_large() -> None:
    for path, text, _ in SPECS:
        load_text(text, str(path), spec_path=path, feasibility=False)
    assert len(SPECS) >= 25 and len(CASES) >= 400 and len(DUPLICABLE) >= 200


def _mutate(text: str, site: Site, kind: str, new: str) -> tuple[str, int]:
    """The text with ``site`` mutated, and the (1-based) line of the mutation."""
    if kind == "key":
        row, col = site.key_at
        lines = text.splitlines(keepends=True)
        lines[row] = lines[row][:col] + new + lines[row][col + len(site.key) :]
        return "".join(lines), row + 1
    return _replace_value(text, site, new), site.value_at[0] + 1


@pytest.mark.parametrize("spec", CORPUS, ids=lambda p: p.name)
def test_every_mutated_key_or_value_is_rejected_at_its_line(spec: Path) -> None:
    cases = [c for c in CASES if c[0] == spec]
    assert cases
    for path, text, site, kind, new in cases:
        mutated, line = _mutate(text, site, kind, new)
        rendered = _rejected_at(mutated, path, line)
        named = ".".join((*site.path, new if kind == "key" else site.key))
        assert any(named in r for r in rendered), rendered


@pytest.mark.parametrize("spec", CORPUS, ids=lambda p: p.name)
def test_every_key_written_twice_is_rejected_at_the_second(spec: Path) -> None:
    for path, text, site in [c for c in DUPLICABLE if c[0] == spec]:
        lines = text.splitlines(keepends=True)
        row = site.key_at[0]
        lines.insert(row + 1, lines[row] if lines[row].endswith("\n") else lines[row] + "\n")
        rendered = _rejected_at("".join(lines), path, row + 2)
        assert any("duplicate" in r.lower() for r in rendered), rendered


def _nested(outer: Site, inner: Site) -> bool:
    """Whether ``inner`` lies inside ``outer``'s value (a misspelt outer key hides it)."""
    whole = (*outer.path, outer.key)
    return inner.path[: len(whole)] == whole


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_two_mutations_are_both_reported_in_one_pass(data: st.DataObject) -> None:
    """Two mutations of one spec on two lines: both lines are named, in one answer."""
    path, text, _sites = data.draw(st.sampled_from(SPECS))
    # (not the format version, read first; nor a section's type: the rest of a section whose
    # type is unknown cannot be checked)
    cases = [c for c in CASES if c[0] == path and c[2].key not in ("sweepspec", "type")]
    first = data.draw(st.sampled_from(cases))
    others = [c for c in cases if c[2].key_at[0] != first[2].key_at[0]
              and c[2].value_at[0] != first[2].value_at[0]
              and not _nested(c[2], first[2]) and not _nested(first[2], c[2])]  # fmt: skip
    second = data.draw(st.sampled_from(others))
    # mutate the later line first: the earlier line's columns stay where they were
    a, b = sorted([first, second], key=lambda c: c[2].value_at, reverse=True)
    mutated, line_a = _mutate(text, a[2], a[3], a[4])
    mutated, line_b = _mutate(mutated, b[2], b[3], b[4])
    with pytest.raises(SweepspecError) as info:
        load_text(mutated, str(path), spec_path=path, feasibility=False)
    lines = {p.location.line for p in info.value.problems if p.location is not None}
    assert {line_a, line_b} <= lines, [p.render() for p in info.value.problems]
