"""The JSON Schema: shipped in the package and checked in under schemas/, both in sync with the
models; it agrees with the loader on the example specs as an editor sees them (interpolations
and `extends:` included: valid) and on invalid ones (rejected), so an editor's squiggles are
right. A wheel carries it: `sweepspec schema --check` works where sweepspec is installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from sweepspec.cli import main
from sweepspec.load import load_spec
from sweepspec.schema import (
    SCHEMA_ID,
    schema_path,
    schema_text,
    shipped_schema_path,
    spec_schema,
)
from sweepspec.spec.source import load_yaml
from sweepspec.units import parse_duration

REPO = Path(__file__).resolve().parents[2]
CHECKED_IN = REPO / "schemas" / "sweepspec-v1.json"
SHIPPED = REPO / "sweepspec" / "schemas" / "sweepspec-v1.json"
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


@pytest.mark.parametrize("copy", [SHIPPED, CHECKED_IN], ids=["shipped", "checked-in"])
def test_schema_copies_are_up_to_date(copy: Path) -> None:
    """The package's copy (what `sweepspec schema --check` reads where it is installed) and
    the repository's (what the modelines of sweeps/ name) are the models' schema."""
    assert copy.read_text(encoding="utf-8") == schema_text(), (
        f"{copy.relative_to(REPO)} is stale; run `sweepspec schema --write`"
    )
    assert shipped_schema_path() == SHIPPED
    assert schema_path() == CHECKED_IN


def test_schema_header() -> None:
    schema = spec_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert schema["additionalProperties"] is False
    # what a spec must have unless it extends a base that gives it
    assert schema["if"] == {"required": ["extends"], "properties": {"extends": {"type": "string"}}}
    assert schema["else"]["required"] == ["sweepspec", "objective", "space"]


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
    # as an editor sees the file itself: interpolations unresolved, no base merged in
    raw, _ = load_yaml(path.read_text(encoding="utf-8"), str(path))
    assert not [f"{list(e.absolute_path)}: {e.message[:200]}" for e in validator.iter_errors(raw)]


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


SPEC: dict[str, Any] = {
    "sweepspec": 1,
    "objective": {"function": "m:f", "metric": "loss", "mode": "min", "config": {"n": 3}},
    "space": {"x": {"uniform": [0, 1]}},
}


def _with(data: dict[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(data))
    *parents, last = dotted.split(".")
    node = out
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return out


@pytest.mark.parametrize(
    "where",
    [
        "trials.num_samples",
        "trials.timeout",
        "stop.sweep.time_budget",
        "scheduler.max_t",
        "searcher.seed",
        "resources.per_trial.gpu",
        "resources.max_concurrent",
        "backend.workers",
        "backend.reuse_processes",
        "space.x.step",
        "space.x.log",
        "stop.trial.loss",
    ],
)
def test_interpolation_wherever_a_number_or_bool_goes(
    where: str, validator: Draft202012Validator
) -> None:
    spec = _with(SPEC, where, "${objective.config.n}")
    if where.startswith("scheduler"):
        spec["scheduler"]["type"] = "asha"
    assert not list(validator.iter_errors(spec))
    for wrong in ("${objective.config.n}0", "${a} ${b}", "$objective.config.n", "{a}"):
        assert list(validator.iter_errors(_with(spec, where, wrong))), wrong


def test_interpolation_inside_lists(validator: Draft202012Validator) -> None:
    spec = _with(SPEC, "space.x", {"int": [1, "${objective.config.n}"]})
    assert not list(validator.iter_errors(spec))


def test_version_takes_no_interpolation(validator: Draft202012Validator) -> None:
    """The loader checks `sweepspec:` before it resolves anything."""
    assert list(validator.iter_errors(_with(SPEC, "sweepspec", "${objective.config.n}")))


@pytest.mark.parametrize(
    ("patch", "valid"),
    [
        ({"objective": {"config": {"n": 4}}}, True),
        ({"scheduler": {"max_t": 5}}, True),  # the base's scheduler gives the type
        ({"backend": {"address": "auto"}}, True),
        ({"space": {"x": {"when": "1 > 0"}}}, True),  # merged into the base's leaf
        ({}, True),
        ({"objective": {"confg": {}}}, False),
        ({"scheduler": {"max_tt": 5}}, False),
        ({"space": {"x": {"uniform": [0, 1], "stepp": 1}}}, False),
        ({"trials": {"num_samples": "many"}}, False),
        ({"colour": "red"}, False),
    ],
)
def test_extends_relaxes_what_the_base_gives(
    patch: dict[str, Any], valid: bool, validator: Draft202012Validator
) -> None:
    spec = {"extends": "_base.yaml", **patch}
    assert (not list(validator.iter_errors(spec))) is valid
    if valid and patch:  # without extends, the same patch lacks what a spec must have
        assert list(validator.iter_errors(patch))


@pytest.mark.parametrize(
    "text",
    [
        *("90s", "30m", "2h", "1.5h", "500ms", "2d", " 45 s ", "10", "1h30m", "2d12h"),
        *("1m30s250ms", "1h 30m", "30m1h", "1h1h", "1hm", "1ms30s", "90 sec", "-5s", "5x", "", "h"),
    ],
)
def test_duration_pattern_agrees_with_the_parser(
    text: str, validator: Draft202012Validator
) -> None:
    try:
        parse_duration(text)
        parsed = True
    except ValueError:
        parsed = False
    schema_ok = not list(validator.iter_errors(_with(SPEC, "trials.timeout", text)))
    assert schema_ok is parsed


# ------------------------------------------------------------------------ schema command


def test_schema_write_and_check_a_copy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A repository of specs keeps its own copy for its modelines: written where it says,
    checked in CI (stale after an upgrade of sweepspec: the check fails)."""
    assert main(["schema", "--write", "schemas/"]) == 0
    copy = tmp_path / "schemas" / "sweepspec-v1.json"
    assert copy.read_text(encoding="utf-8") == schema_text()
    assert main(["schema", "--check", "schemas/"]) == 0
    assert main(["schema", "--write", "elsewhere/mine.json"]) == 0
    assert (tmp_path / "elsewhere" / "mine.json").read_text(encoding="utf-8") == schema_text()
    copy.write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert main(["schema", "--check", str(copy)]) == 1
    err = capsys.readouterr().err
    assert err == f"{copy} is stale; run `sweepspec schema --write {copy}`\n"


def _wheel_install(tmp_path: Path) -> Path:
    """Build a wheel of this checkout (from a copy of its package) and install it into a new
    virtual environment (its core dependencies from the package index); its bin/."""
    source = tmp_path / "source"
    shutil.copytree(
        REPO / "sweepspec", source / "sweepspec", ignore=shutil.ignore_patterns("__pycache__")
    )
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_CACHE_DIR"] = str(tmp_path / "pip-cache")

    def run(*args: str | Path) -> None:
        done = subprocess.run(
            [str(a) for a in args],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr

    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "w", source)
    (wheel,) = (tmp_path / "w").glob("sweepspec-*.whl")
    run(sys.executable, "-m", "venv", tmp_path / "venv")
    run(tmp_path / "venv" / "bin" / "python", "-m", "pip", "install", "-q", wheel)
    return tmp_path / "venv" / "bin"


@pytest.mark.slow
def test_installed_wheel_ships_the_schema(tmp_path: Path) -> None:
    """Outside this repository, from a wheel: the schema is there and up to date, printed and
    written; validate works with the core dependencies alone."""
    bin_dir = _wheel_install(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()

    def sweepspec(*args: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        return subprocess.run(
            [str(bin_dir / "sweepspec"), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    check = sweepspec("schema", "--check")
    assert check.returncode == 0, check.stderr
    shipped = str(tmp_path / "venv" / "lib")
    assert check.stderr.startswith(shipped) and check.stderr.endswith(": up to date\n")
    assert "site-packages/sweepspec/schemas/sweepspec-v1.json" in check.stderr
    assert sweepspec("schema").stdout == schema_text()
    refused = sweepspec("schema", "--write")  # into the installed package: no
    assert refused.returncode == 2
    assert "sweepspec schema --write schemas/" in refused.stderr
    assert sweepspec("schema", "--write", "schemas").returncode == 0
    assert (work / "schemas" / "sweepspec-v1.json").read_text(encoding="utf-8") == schema_text()
    (work / "spec.yaml").write_text(
        "sweepspec: 1\nobjective: {function: m:f, metric: loss, mode: min}\n"
        "space: {x: {uniform: [0, 1]}}\n",
        encoding="utf-8",
    )
    valid = sweepspec("validate", "spec.yaml")
    assert (valid.returncode, valid.stderr) == (0, "1 spec(s) valid\n")
