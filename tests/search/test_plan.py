"""Spec -> SearchPlan (the same on every backend): how each distribution is suggested, choices
encoded, the grid, samplers and directions. Pure: nothing runs, no user code is imported."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")

from sweepspec.load import load_text  # noqa: E402
from sweepspec.search.params import decode_choice, encode_choice  # noqa: E402
from sweepspec.search.plan import SearchPlan, compile_search  # noqa: E402
from sweepspec.search.samplers import build_sampler  # noqa: E402

HEAD = """\
sweepspec: 1
name: compiled
objective: {function: sweepspec_examples.toy:quadratic, metric: loss, mode: min}
"""
SPACE = """\
space:
  x: {uniform: [0.0, 1.0]}
"""


def plan_of(snippet: str, *, space: bool = True) -> SearchPlan:
    text = HEAD + (SPACE if space and "space:" not in snippet else "") + textwrap.dedent(snippet)
    loaded = load_text(text, "spec.yaml", feasibility=False)
    return compile_search(loaded.spec)


def space_plan(leaves: str) -> SearchPlan:
    return plan_of("space:\n" + textwrap.indent(textwrap.dedent(leaves), "  "))


def distribution(method: str, kwargs: dict[str, Any]) -> Any:
    d = optuna.distributions
    if method == "float":
        return d.FloatDistribution(**kwargs)
    if method == "int":
        return d.IntDistribution(**kwargs)
    return d.CategoricalDistribution(**kwargs)


# -- distributions ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaf", "method", "kwargs", "options"),
    [
        pytest.param(
            "{uniform: [0.0, 1.0]}",
            "float",
            {"low": 0.0, "high": 1.0, "step": None, "log": False},
            [],
            id="uniform",
        ),
        pytest.param(
            "{uniform: [0.001, 1.0], log: true}",
            "float",
            {"low": 0.001, "high": 1.0, "step": None, "log": True},
            [],
            id="uniform-log",
        ),
        pytest.param(
            "{uniform: [0.0, 0.5], step: 0.05}",
            "float",
            {"low": 0.0, "high": 0.5, "step": 0.05, "log": False},
            [],
            id="uniform-step",
        ),
        pytest.param(
            "{loguniform: [1.0e-5, 1.0e-2]}",
            "float",
            {"low": 1e-5, "high": 1e-2, "log": True},
            [],
            id="loguniform",
        ),
        pytest.param(
            "{int: [32, 512]}",
            "int",
            {"low": 32, "high": 512, "step": 1, "log": False},
            [],
            id="int-inclusive",
        ),
        pytest.param(
            "{int: [2, 10], step: 2}",
            "int",
            {"low": 2, "high": 10, "step": 2, "log": False},
            [],
            id="int-step",
        ),
        pytest.param(
            "{int: [32, 512], log: true}",
            "int",
            {"low": 32, "high": 512, "step": 1, "log": True},
            [],
            id="int-log",
        ),
        pytest.param(
            "{choice: [32, 64, 128]}",
            "categorical",
            {"choices": [32, 64, 128]},
            [32, 64, 128],
            id="choice-int",
        ),
        pytest.param(
            "{choice: [adam, sgd]}",
            "categorical",
            {"choices": ["adam", "sgd"]},
            ["adam", "sgd"],
            id="choice-str",
        ),
        pytest.param(
            "{choice: [[64, 64], [128, 128], [256, 128, 64]]}",
            "categorical",
            {"choices": ["[64, 64]", "[128, 128]", "[256, 128, 64]"]},
            [[64, 64], [128, 128], [256, 128, 64]],
            id="choice-lists-encoded",
        ),
        pytest.param(
            "{choice: [1, 'one', null, false, 2.5]}",
            "categorical",
            {"choices": [1, "one", None, False, 2.5]},
            [1, "one", None, False, 2.5],
            id="choice-mixed",
        ),
        pytest.param(
            "{grid: [100, 500]}", "categorical", {"choices": [100, 500]}, [100, 500], id="grid"
        ),
    ],
)
def test_distribution(leaf: str, method: str, kwargs: dict[str, Any], options: list[Any]) -> None:
    plan = space_plan(f"p: {leaf}\n")
    s = plan.suggest["p"]
    assert (s.path, s.method, s.kwargs, s.options) == ("p", method, kwargs, options)
    distribution(method, s.kwargs)  # Optuna accepts exactly these arguments


def test_fixed_values_are_not_suggested_and_nesting_keeps_dotted_paths() -> None:
    plan = space_plan("""\
        seed: 0
        literal: {value: {a: 1}}
        risk:
          weights:
            drawdown: {uniform: [0.2, 0.4]}
        optimizer: {choice: [adam, sgd]}
        momentum: {uniform: [0.0, 0.9], when: "optimizer == 'sgd'"}
    """)
    assert sorted(plan.suggest) == ["momentum", "optimizer", "risk.weights.drawdown"]
    assert plan.suggest["risk.weights.drawdown"].kwargs["low"] == 0.2


@pytest.mark.parametrize(
    "value",
    [
        pytest.param([64, 64], id="list"),
        pytest.param({"a": [1, 2]}, id="dict"),
        pytest.param("adam", id="str"),
        pytest.param(3, id="int"),
        pytest.param(None, id="none"),
        pytest.param(True, id="bool"),
    ],
)
def test_choice_encoding_round_trips(value: Any) -> None:
    options = [value, "other", 1.5]
    encoded = encode_choice(value)
    assert isinstance(encoded, None | bool | int | float | str)
    assert decode_choice(encoded, options) == value
    assert type(decode_choice(encoded, options)) is type(value)


def test_choice_true_and_one_stay_distinct() -> None:
    options = [1, True, "1"]
    assert [decode_choice(encode_choice(o), options) for o in options] == options
    assert [type(decode_choice(encode_choice(o), options)) for o in options] == [int, bool, str]


# -- grid leaves ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("leaves", "num_samples", "points"),
    [
        pytest.param("x: {uniform: [0.0, 1.0]}\n", 5, [], id="no-grid"),
        pytest.param(
            "opt: {grid: [adam, sgd]}\n", 3, [{"opt": "adam"}, {"opt": "sgd"}], id="one-grid"
        ),
        pytest.param(
            "opt: {grid: [adam, sgd]}\nwidth: {grid: [1, 2, 3]}\nx: {uniform: [0.0, 1.0]}\n",
            4,
            [{"opt": o, "width": w} for o in ("adam", "sgd") for w in (1, 2, 3)],
            id="cross-product",
        ),
        pytest.param(
            "arch: {grid: [[8, 8], [16]]}\n",
            2,
            [{"arch": [8, 8]}, {"arch": [16]}],
            id="list-values",
        ),
    ],
)
def test_grid_points(leaves: str, num_samples: int, points: list[dict[str, Any]]) -> None:
    plan = plan_of(
        "space:\n" + textwrap.indent(leaves, "  ") + f"trials: {{num_samples: {num_samples}}}\n"
    )
    assert list(plan.grid_points) == points
    assert plan.total_trials == num_samples * max(1, len(points))
    for point in points:  # every grid value is one of the categorical's choices
        for path, value in point.items():
            assert encode_choice(value) in plan.suggest[path].kwargs["choices"]


# -- searchers --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("searcher", "sampler", "kwargs", "cls"),
    [
        pytest.param("{type: random, seed: 1}", "RandomSampler", {}, "RandomSampler", id="random"),
        pytest.param("{type: tpe}", "TPESampler", {}, "TPESampler", id="tpe"),
        pytest.param(
            "{type: tpe, options: {multivariate: true, n_startup_trials: 5}}",
            "TPESampler",
            {"multivariate": True, "n_startup_trials": 5},
            "TPESampler",
            id="tpe-options",
        ),
        pytest.param(
            "{type: cmaes, options: {popsize: 4}}",
            "CmaEsSampler",
            {"popsize": 4},
            "CmaEsSampler",
            id="cmaes",
        ),
        pytest.param("{type: gp}", "GPSampler", {}, "GPSampler", id="gp"),
        pytest.param(
            "{type: qmc, options: {scramble: true}}",
            "QMCSampler",
            {"scramble": True},
            "QMCSampler",
            id="qmc",
        ),
        pytest.param(
            "{type: nsga2, options: {population_size: 10}}",
            "NSGAIISampler",
            {"population_size": 10},
            "NSGAIISampler",
            id="nsga2",
        ),
        pytest.param("{type: hyperopt}", "HyperoptSampler", {}, "HyperoptSampler", id="hyperopt"),
    ],
)
def test_sampler(searcher: str, sampler: str, kwargs: dict[str, Any], cls: str) -> None:
    plan = plan_of(f"searcher: {searcher}\n")
    assert (plan.sampler, plan.sampler_kwargs) == (sampler, kwargs)
    for seed in (None, 7):
        built = build_sampler(plan, seed)
        assert type(built).__name__ == cls
        assert isinstance(built, optuna.samplers.BaseSampler)


def test_grid_searcher_enumerates_the_finite_space() -> None:
    plan = plan_of("""\
        space:
          a: {uniform: [0.0, 1.0], step: 0.25}
          n: {int: [1, 7], step: 3}
          h: {choice: [[64, 64], [128]]}
        searcher: {type: grid}
        trials: {num_samples: 6}
    """)
    assert plan.sampler == "GridSampler"
    assert plan.sampler_kwargs == {
        "search_space": {
            "a": [0.0, 0.25, 0.5, 0.75, 1.0],
            "n": [1, 4, 7],
            "h": ["[64, 64]", "[128]"],
        }
    }
    assert plan.total_trials == 6  # num_samples caps the searcher's own grid
    assert isinstance(build_sampler(plan, 0), optuna.samplers.GridSampler)


def test_seeded_sampler_repeats_its_sequence() -> None:
    plan = plan_of("searcher: {type: tpe}\n")

    def draws(seed: int) -> list[float]:
        study = optuna.create_study(sampler=build_sampler(plan, seed))
        out = []
        for _ in range(5):
            trial = study.ask()
            out.append(trial.suggest_float("x", **plan.suggest["x"].kwargs))
            study.tell(trial, 0.0)
        return out

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    assert draws(3) == draws(3)
    assert draws(3) != draws(4)


# -- objectives -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("objective", "directions", "names"),
    [
        pytest.param("{function: m:f, metric: loss, mode: min}", ["minimize"], ["loss"], id="min"),
        pytest.param("{function: m:f, metric: acc, mode: max}", ["maximize"], ["acc"], id="max"),
        pytest.param(
            "{function: m:f, metrics: {accuracy: max, latency_ms: min}}",
            ["maximize", "minimize"],
            ["accuracy", "latency_ms"],
            id="multi",
        ),
    ],
)
def test_directions(objective: str, directions: list[str], names: list[str]) -> None:
    text = HEAD.replace(HEAD.splitlines()[2], f"objective: {objective}") + SPACE
    text += "searcher: {type: nsga2}\n"
    plan = compile_search(load_text(text, "spec.yaml", feasibility=False).spec)
    assert (plan.directions, plan.metric_names) == (directions, names)
    study = optuna.create_study(directions=plan.directions, sampler=build_sampler(plan, 0))
    assert [d.name.lower() for d in study.directions] == directions
