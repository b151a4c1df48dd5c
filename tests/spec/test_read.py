"""load_spec / load_text: defaults, extends, overrides, interpolation, errors, YAML traps, and a
property test: any input gives a valid spec or located errors, never another exception."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sweepspec.errors import SweepspecError
from sweepspec.load import LoadedSpec, load_spec, load_text

REPO = Path(__file__).resolve().parents[2]
DQN = (REPO / "sweeps" / "dqn.yaml").read_text(encoding="utf-8")

HEAD = """\
sweepspec: 1
objective:
  function: train:main
  metric: loss
  mode: min
"""
MINIMAL = HEAD + "space:\n  lr: {loguniform: [1.0e-5, 1.0e-1]}\n"

WriteFile = Callable[[str, str], Path]


def errors(text: str, file: str = "spec.yaml", overrides: tuple[str, ...] = ()) -> list[Any]:
    with pytest.raises(SweepspecError) as info:
        load_text(text, file, overrides)
    return info.value.problems


# --------------------------------------------------------------------------- defaults


def test_defaults() -> None:
    loaded = load_text(MINIMAL, "spec.yaml")
    spec = loaded.spec
    assert spec.name == "spec"
    assert spec.searcher.type == "tpe"
    assert spec.searcher.seed is None
    assert spec.scheduler.type == "fifo"
    assert spec.backend.type == "optuna"
    assert spec.storage == "runs"
    assert spec.trials.num_samples == 10
    assert spec.constraints == []
    assert loaded.feasible_share is None  # no constraints
    assert loaded.text == MINIMAL
    assert loaded.overrides == ()


@pytest.mark.parametrize(
    ("filename", "name"),
    [
        ("dqn.yaml", "dqn"),
        ("My Sweep v2.yaml", "my-sweep-v2"),
        ("LoRA_r+alpha.yml", "lora_r-alpha"),
        ("__.yaml", "sweep"),
        ("ÜBER.yaml", "ber"),
    ],
)
def test_default_name_is_the_slugified_stem(
    write_file: WriteFile, filename: str, name: str
) -> None:
    path = write_file(filename, MINIMAL)
    loaded = load_spec(path)
    assert loaded.spec.name == name
    assert loaded.resolved["name"] == name
    assert loaded.path == path
    assert loaded.base_dir == path.parent


def test_null_name_gets_the_default() -> None:
    loaded = load_text(MINIMAL + "name: null\n", "Null Name.yaml")
    assert loaded.spec.name == loaded.spec.run_name == "null-name"


def test_explicit_name_is_kept() -> None:
    assert load_text(MINIMAL + "name: my-run.v1\n", "x.yaml").spec.name == "my-run.v1"


def test_bad_name_is_an_error() -> None:
    (problem,) = errors(MINIMAL + "name: My Run\n")
    assert problem.path == "name"
    assert problem.location.line == 8


def test_resolved_data_is_plain_and_complete(write_file: WriteFile) -> None:
    text = (
        HEAD
        + """\
  config: {total_timesteps: 20000}
space:
  lr: {loguniform: [1e-5, 1e-2]}
  bs: {choice: [32, 64]}
  eval_every: ${objective.config.total_timesteps}
constraints: ["bs <= 32 or lr < 1e-3"]
"""
    )
    loaded = load_spec(write_file("My Spec.yaml", text))
    assert loaded.resolved == {
        "sweepspec": 1,
        "objective": {
            "function": "train:main",
            "metric": "loss",
            "mode": "min",
            "config": {"total_timesteps": 20000},
        },
        "space": {
            "lr": {"loguniform": [1e-5, 1e-2]},
            "bs": {"choice": [32, 64]},
            "eval_every": 20000,
        },
        "constraints": ["bs <= 32 or lr < 1e-3"],
        "name": "my-spec",
    }
    assert loaded.feasible_share is not None and 0.5 < loaded.feasible_share < 1
    # the resolved data is itself a valid spec (what a run directory stores)
    import yaml

    again = write_file("again.yaml", yaml.safe_dump(loaded.resolved, sort_keys=False))
    assert load_spec(again).spec == loaded.spec


def test_file_not_found_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SweepspecError, match="no such file") as info:
        load_spec(tmp_path / "missing.yaml")
    assert info.value.problems[0].location.file.endswith("missing.yaml")
    with pytest.raises(SweepspecError, match="directory"):
        load_spec(tmp_path)


# --------------------------------------------------------------------------- extends


def test_extends_merges_child_over_base(write_file: WriteFile) -> None:
    write_file(
        "sub/_base.yaml",
        HEAD
        + """\
  config: {epochs: 10, data: mnist, layers: [1, 2, 3]}
space:
  lr: {loguniform: [1.0e-5, 1.0e-1]}
  batch_size: {choice: [32, 64]}
  net: {width: {int: [8, 64]}, depth: 2}
constraints:
  - batch_size <= 64
  - lr < 0.05
trials: {num_samples: 20, max_retries: 3}
""",
    )
    child = write_file(
        "sub/child.yaml",
        """\
sweepspec: 1
extends: _base.yaml
objective:
  config: {epochs: 3, layers: [4]}
space:
  net: {depth: 4}
  dropout: {uniform: [0.0, 0.5]}
constraints:
  - batch_size >= 32
trials: {num_samples: 5}
""",
    )
    spec = load_spec(child).spec
    assert spec.objective.function == "train:main"  # from the base
    assert spec.objective.config == {"epochs": 3, "data": "mnist", "layers": [4]}
    assert [p.path for p in spec.params()] == [
        "lr", "batch_size", "net.width", "net.depth", "dropout"
    ]  # fmt: skip
    assert spec.space["net"]["depth"] == 4
    assert spec.constraints == ["batch_size >= 32"]  # lists are replaced, not appended
    assert spec.trials.num_samples == 5
    assert spec.trials.max_retries == 3
    assert spec.name == "child"
    assert "extends" not in load_spec(child).resolved


def test_extends_is_relative_to_the_spec_file(write_file: WriteFile, tmp_path: Path) -> None:
    write_file("a/b/_base.yaml", MINIMAL)
    child = write_file("a/b/child.yaml", "sweepspec: 1\nextends: _base.yaml\n")
    (tmp_path / "elsewhere").mkdir()
    os.chdir(tmp_path / "elsewhere")
    assert load_spec(child).spec.params()[0].path == "lr"


def test_chained_extends(write_file: WriteFile) -> None:
    write_file("_a.yaml", MINIMAL + "trials: {num_samples: 1, max_retries: 1}\n")
    write_file("_b.yaml", "extends: _a.yaml\ntrials: {num_samples: 2}\nsearcher: {type: random}\n")
    c = write_file("c.yaml", "sweepspec: 1\nextends: _b.yaml\ntrials: {num_samples: 3}\n")
    spec = load_spec(c).spec
    assert (spec.trials.num_samples, spec.trials.max_retries) == (3, 1)
    assert spec.searcher.type == "random"


def test_extends_cycle_is_an_error(write_file: WriteFile) -> None:
    write_file("_a.yaml", "extends: _b.yaml\n")
    write_file("_b.yaml", "extends: _a.yaml\n")
    c = write_file("c.yaml", "sweepspec: 1\nextends: _a.yaml\n")
    with pytest.raises(SweepspecError) as info:
        load_spec(c)
    (problem,) = info.value.problems
    assert problem.code == "extends-cycle"
    assert problem.path == "extends"
    assert "loops back" in problem.message
    assert problem.location.line == 1


def test_extends_itself(write_file: WriteFile) -> None:
    c = write_file("c.yaml", MINIMAL + "extends: c.yaml\n")
    with pytest.raises(SweepspecError, match="loops back"):
        load_spec(c)


def test_extends_missing_file(write_file: WriteFile) -> None:
    c = write_file("c.yaml", MINIMAL + "extends: nope.yaml\n")
    with pytest.raises(SweepspecError) as info:
        load_spec(c)
    (problem,) = info.value.problems
    assert (problem.path, problem.location.line, problem.location.col) == ("extends", 8, 10)


def test_extends_base_with_newer_version(write_file: WriteFile) -> None:
    write_file("_base.yaml", MINIMAL.replace("sweepspec: 1", "sweepspec: 2"))
    c = write_file("c.yaml", "sweepspec: 1\nextends: _base.yaml\n")
    with pytest.raises(SweepspecError, match="newer sweepspec") as info:
        load_spec(c)
    assert info.value.problems[0].location.file == "_base.yaml"


def test_error_in_child_after_extends_points_at_child(write_file: WriteFile) -> None:
    write_file("_base.yaml", MINIMAL)
    c = write_file("c.yaml", "sweepspec: 1\nextends: _base.yaml\nspace:\n  x: {uniform: [1, 0]}\n")
    with pytest.raises(SweepspecError) as info:
        load_spec(c)
    (problem,) = info.value.problems
    assert (problem.location.file, problem.location.line) == (str(c), 4)
    assert problem.path == "space.x"


# --------------------------------------------------------------------------- overrides


def test_override_is_applied() -> None:
    loaded = load_text(DQN, "dqn.yaml", ["trials.num_samples=10", "searcher.seed=7"])
    assert loaded.spec.trials.num_samples == 10
    assert loaded.spec.searcher.seed == 7
    assert loaded.overrides == ("trials.num_samples=10", "searcher.seed=7")
    assert loaded.resolved["trials"]["num_samples"] == 10


def test_override_adds_a_mapping() -> None:
    loaded = load_text(
        MINIMAL, "x.yaml", ["space.bs={choice: [1, 2]}", "stop.sweep.time_budget=1h"]
    )
    assert loaded.spec.space["bs"].choice == [1, 2]
    assert loaded.spec.stop.sweep.time_budget == 3600


def test_bad_override_value_names_the_override() -> None:
    (problem,) = errors(DQN, "dqn.yaml", ("trials.num_samples=abc",))
    assert problem.location.file == "override 'trials.num_samples=abc'"
    assert problem.location.line == 0
    assert problem.path == "trials.num_samples"
    assert problem.render() == (
        "override 'trials.num_samples=abc': trials.num_samples: "
        "input should be a valid integer, but got 'abc'"
    )


def test_override_of_unknown_key_suggests() -> None:
    (problem,) = errors(DQN, "dqn.yaml", ("trials.num_sample=3",))
    assert problem.location.file == "override 'trials.num_sample=3'"
    assert "unknown key 'num_sample' (did you mean 'num_samples'?)" in problem.message


@pytest.mark.parametrize("bad", ["trials", "=3", "a..b=1", "x y=1", "-a=1"])
def test_malformed_override(bad: str) -> None:
    (problem,) = errors(MINIMAL, "x.yaml", (bad,))
    assert problem.code == "override"
    assert problem.location.file == f"override '{bad}'"


def test_several_bad_overrides_all_reported() -> None:
    problems = errors(MINIMAL, "x.yaml", ("trials", "searcher"))
    assert len(problems) == 2


# --------------------------------------------------------------------------- interpolation


def test_interpolation_is_resolved() -> None:
    text = HEAD + "  config: {steps: 500}\nspace:\n  every: ${objective.config.steps}\n"
    text += "  lr: {uniform: [0.1, 0.2]}\n"
    loaded = load_text(text, "x.yaml")
    assert loaded.spec.space["every"] == 500
    assert loaded.resolved["space"]["every"] == 500


def test_interpolation_of_override() -> None:
    text = HEAD + "  config: {steps: 500}\nspace:\n  every: ${objective.config.steps}\n"
    text += "  lr: {uniform: [0.1, 0.2]}\n"
    loaded = load_text(text, "x.yaml", ["objective.config.steps=7"])
    assert loaded.spec.space["every"] == 7


def test_interpolation_to_missing_key() -> None:
    text = MINIMAL + "  every: ${objective.config.nope}\n"
    (problem,) = errors(text)
    assert problem.code == "interpolation"
    assert (problem.path, problem.location.line) == ("space.every", 8)


CANARY = "canary-8d1f3e-secret"


class _RecordingEnviron(dict[str, str]):
    """Stands in for ``os.environ``; remembers every key read."""

    def __init__(self, data: dict[str, str]) -> None:
        super().__init__(data)
        self.read: list[str] = []

    def __getitem__(self, key: str) -> str:
        self.read.append(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:  # type: ignore[override]
        self.read.append(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        self.read.append(str(key))
        return super().__contains__(key)


def test_env_in_storage_stays_literal_and_is_never_read(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = _RecordingEnviron({**os.environ, "PGPASS": CANARY})
    monkeypatch.setattr(os, "environ", environ)
    url = "postgresql://sweeper:${oc.env:PGPASS}@db:5432/sweeps"
    text = (
        MINIMAL
        + f"storage: {url}\ntracking:\n  mlflow: {{tracking_uri: 'http://u:${{oc.env:PGPASS}}@h'}}\n"
    )
    loaded = load_text(text, "x.yaml")
    assert loaded.spec.storage == url
    assert loaded.resolved["storage"] == url
    assert loaded.spec.tracking.mlflow.tracking_uri == "http://u:${oc.env:PGPASS}@h"
    assert CANARY not in repr(loaded)
    assert "PGPASS" not in environ.read


def test_env_elsewhere_is_an_error_without_reading_it(monkeypatch: pytest.MonkeyPatch) -> None:
    environ = _RecordingEnviron({**os.environ, "PGPASS": CANARY})
    monkeypatch.setattr(os, "environ", environ)
    text = HEAD + "  config: {pw: '${oc.env:PGPASS}'}\nspace:\n  x: ${oc.env:PGPASS,default}\n"
    problems = errors(text)
    assert [p.path for p in problems] == ["objective.config.pw", "space.x"]
    assert all(p.code == "interpolation" for p in problems)
    assert CANARY not in "".join(p.render() for p in problems)
    assert "PGPASS" not in environ.read


# --------------------------------------------------------------------------- errors


def test_all_errors_of_a_file_are_reported_sorted_by_line() -> None:
    text = """\
colour: red
sweepspec: 1
trials:
  num_samples: 0
objective:
  function: train:main
  metric: loss
  mode: maximum
space:
  lr: {loguniform: [0, 1.0e-1]}
"""
    problems = errors(text)
    assert [(p.location.line, p.path) for p in problems] == [
        (1, "colour"),
        (4, "trials.num_samples"),
        (8, "objective.mode"),
        (10, "space.lr"),
    ]
    assert [p.code for p in problems] == [
        "unknown-key", "out-of-range", "invalid-choice", "invalid-value"
    ]  # fmt: skip


def test_cross_field_errors_are_all_reported() -> None:
    text = (
        MINIMAL + "constraints: [lr_x > 0]\ntry_first: [{lr: 5}]\nsearcher: {options: {foo: 1}}\n"
    )
    problems = errors(text)
    assert [p.path for p in problems] == ["constraints.0", "try_first.0.lr", "searcher.options.foo"]
    assert [p.location.line for p in problems] == [8, 9, 10]


def test_version_is_checked_first() -> None:
    (problem,) = errors("sweepspec: 3\nfoo: 1\nbar: 2\nspace: 7\n")
    assert problem.code == "version"
    assert "needs a newer sweepspec" in problem.message


@pytest.mark.parametrize("version", ["'1'", "1.0", "true", "0", "null"])
def test_wrong_version(version: str) -> None:
    (problem,) = errors(MINIMAL.replace("sweepspec: 1", f"sweepspec: {version}"))
    assert problem.code == "version"
    assert (problem.location.line, problem.location.col) == (1, 12)


def test_error_is_a_sweepspec_error_with_text() -> None:
    with pytest.raises(SweepspecError) as info:
        load_text(MINIMAL + "oops: 1\n", "f.yaml")
    assert str(info.value) == "f.yaml:8:1: oops: unknown key 'oops'"
    assert info.value.exit_code == 1


# --------------------------------------------------------------------------- YAML traps


def test_yaml_12_numbers_and_booleans() -> None:
    text = (
        HEAD
        + """\
  config:
    a: yes
    b: no
    c: on
    d: off
    e: 1:30
    f: true
    g: 0o17
    h: 0x1F
    i: .inf
    j: 1_000
    k: 2001-01-01
    l: ~
space:
  lr: {loguniform: [1e-5, 1e-2]}
  wd: {choice: [1e-3, 1E-4, -2e+1, .5]}
"""
    )
    spec = load_text(text, "x.yaml").spec
    assert spec.space["lr"].loguniform == [1e-5, 1e-2]
    assert spec.space["wd"].choice == [1e-3, 1e-4, -20.0, 0.5]
    assert all(isinstance(v, float) for v in spec.space["wd"].choice)
    config = spec.objective.config
    assert config["a"] == "yes" and config["b"] == "no"
    assert config["c"] == "on" and config["d"] == "off"
    assert config["e"] == "1:30"
    assert config["f"] is True
    assert (config["g"], config["h"]) == (15, 31)
    assert config["i"] == float("inf")
    assert config["j"] == "1_000"
    assert config["k"] == "2001-01-01"
    assert config["l"] is None


def test_yes_is_not_a_boolean() -> None:
    (problem,) = errors(HEAD + "space:\n  n: {int: [1, 8], log: yes}\n")
    assert problem.path == "space.n.log"
    assert "valid boolean" in problem.message


def test_valid_example_files() -> None:
    for path in sorted((REPO / "tests" / "data" / "valid").glob("[!_]*.yaml")):
        assert isinstance(load_spec(path), LoadedSpec), path


# --------------------------------------------------------------------------- properties


def _check(text: str | bytes, overrides: tuple[str, ...] = ()) -> None:
    """Loading gives a spec or located problems; any other exception fails the test."""
    try:
        loaded = load_text(text, "prop.yaml", overrides)
    except SweepspecError as exc:
        assert exc.problems
        for problem in exc.problems:
            loc = problem.location
            assert loc is not None and loc.file, problem
            if not loc.file.startswith("override '"):
                assert loc.line >= 1 and loc.col >= 1, problem
            assert problem.render()
    else:
        assert isinstance(loaded, LoadedSpec)


PROPERTY = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

YAMLISH = st.text(
    alphabet=st.sampled_from([*"ab1 .-:,[]{}#&*!|>'\"?~%@\t\n", "\\", "\x00", "é"]),
    max_size=80,
)


@PROPERTY
@given(st.one_of(st.text(max_size=200), YAMLISH, st.binary(max_size=100)))
def test_any_text_loads_or_fails_with_location(text: str | bytes) -> None:
    _check(text)


LINES = DQN.splitlines(keepends=True)
SNIPPETS = [
    "sweepspec: 2", "extends: _x.yaml", "space: 1", "when: 'x > 1'", "choice: []",
    "type: pbt", "- 1", "${objective.config.nope}", "${oc.env:HOME}", "&a", "*a",
    "!!python/object:os.system", "<<: {}", "{", "]", "'", '"', "\t", "\x00", ": :",
    "log: true", "step: 0", "1e400", ".nan", "grid: [1, 1]", "derived: {a: b}",
]  # fmt: skip


@st.composite
def mutated_dqn(draw: st.DrawFn) -> str:
    lines = list(LINES)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert", "splice"]))
        if op == "delete" and lines:
            del lines[draw(st.integers(0, len(lines) - 1))]
        elif op == "duplicate" and lines:
            i = draw(st.integers(0, len(lines) - 1))
            lines.insert(i, lines[i])
        elif op == "swap":
            text = "".join(lines)
            if len(text) >= 2:
                i = draw(st.integers(0, len(text) - 1))
                j = draw(st.integers(0, len(text) - 1))
                chars = list(text)
                chars[i], chars[j] = chars[j], chars[i]
                lines = "".join(chars).splitlines(keepends=True)
        elif op == "insert":
            indent = draw(st.sampled_from(["", "  ", "    "]))
            key = draw(
                st.one_of(st.sampled_from(SNIPPETS), st.from_regex(r"[a-z_]{1,8}", fullmatch=True))
            )
            value = draw(st.one_of(st.sampled_from(SNIPPETS), st.integers().map(str)))
            lines.insert(draw(st.integers(0, len(lines))), f"{indent}{key}: {value}\n")
        else:
            text = "".join(lines)
            i = draw(st.integers(0, len(text)))
            text = text[:i] + draw(st.sampled_from(SNIPPETS)) + text[i:]
            lines = text.splitlines(keepends=True)
    return "".join(lines)


@pytest.fixture
def fewer_feasibility_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    """The whole pipeline, but 50 feasibility samples instead of 1000 (most of a load's time)."""
    from sweepspec.search import feasibility

    monkeypatch.setattr(feasibility.feasible_share, "__defaults__", (50, 0))


@PROPERTY
@given(text=mutated_dqn())
def test_mutated_spec_loads_or_fails_with_location(
    fewer_feasibility_samples: None, text: str
) -> None:
    _check(text)


OVERRIDE = st.one_of(
    st.text(max_size=40),
    st.builds(
        "{}={}".format,
        st.sampled_from(
            ["trials.num_samples", "space.gamma", "searcher", "scheduler.type", "space.x.y",
             "objective.metric", "storage", "resources.per_trial.gpu", "sweepspec", "extends"]
        ),
        st.one_of(st.sampled_from(SNIPPETS), st.text(max_size=20), st.integers().map(str)),
    ),
)  # fmt: skip


OVERRIDE_BASE = MINIMAL + "  gamma: {uniform: [0.9, 0.99]}\nscheduler: {type: asha}\n"


@settings(PROPERTY, max_examples=100)
@given(st.lists(OVERRIDE, max_size=3))
def test_overrides_load_or_fail_with_location(overrides: list[str]) -> None:
    _check(OVERRIDE_BASE, tuple(overrides))


def test_a_long_extends_chain_is_not_called_a_loop(write_file: WriteFile) -> None:
    write_file("_b0.yaml", MINIMAL)
    for i in range(1, 13):
        write_file(f"_b{i}.yaml", f"extends: _b{i - 1}.yaml\n")
    assert load_spec(write_file("ok.yaml", "extends: _b12.yaml\n")).spec.run_name == "ok"
    for i in range(13, 40):
        write_file(f"_b{i}.yaml", f"extends: _b{i - 1}.yaml\n")
    with pytest.raises(SweepspecError) as info:
        load_spec(write_file("deep.yaml", "extends: _b39.yaml\n"))
    (problem,) = info.value.problems
    assert problem.code == "extends-depth" and "loops" not in problem.message


def test_an_override_chooses_the_base(write_file: WriteFile) -> None:
    write_file("_one.yaml", MINIMAL)
    write_file("_two.yaml", MINIMAL.replace("mode: min", "mode: max"))
    spec = write_file("s.yaml", "extends: _one.yaml\n")
    assert load_spec(spec, ["extends=_two.yaml"]).spec.objective.mode == "max"
    with pytest.raises(SweepspecError) as info:
        load_spec(spec, ["extends=_none.yaml"])
    (problem,) = info.value.problems
    assert problem.location is not None and problem.location.file == "override 'extends=_none.yaml'"


def test_an_error_caused_by_an_override_is_located_at_the_override(
    write_file: WriteFile,
) -> None:
    spec = write_file("s.yaml", MINIMAL)
    with pytest.raises(SweepspecError) as info:
        load_spec(spec, ["space.lr.loguniform=[1,0]"])
    (problem,) = info.value.problems
    assert problem.location is not None
    assert problem.location.file == "override 'space.lr.loguniform=[1,0]'"
