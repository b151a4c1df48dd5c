"""SpaceModel: dependency order, conditions, derived values, constraints, the trial's config,
and random sampling that respects every distribution's bounds."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from sweepspec.load import load_text
from sweepspec.search.space import SpaceModel, flatten_config, sample_random, sample_value, set_path

HEAD = """\
sweepspec: 1
objective:
  function: train:main
  metric: loss
  mode: min
"""


def model(body: str, head: str = HEAD) -> SpaceModel:
    spec = load_text(head + body, "space.yaml", feasibility=False).spec
    return SpaceModel.from_spec(spec)


def draws(space_model: SpaceModel, n: int, seed: int = 0) -> list[dict[str, object]]:
    rng = random.Random(seed)
    return [sample_random(space_model, rng) for _ in range(n)]


CONDITIONAL = """\
space:
  nesterov: {choice: [true, false], when: "momentum > 0.5"}
  momentum: {uniform: [0.0, 0.99], when: "optimizer == 'sgd'"}
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  optimizer: {choice: [adam, sgd]}
  warmup: {value: 100, when: "optimizer == 'adam'"}
  seed: 0
"""


# --------------------------------------------------------------------------- order, conditions


def test_dependency_order_puts_conditions_after_what_they_use() -> None:
    m = model(CONDITIONAL)
    order = [p.path for p in m.params]
    assert order.index("optimizer") < order.index("momentum") < order.index("nesterov")
    assert sorted(order) == sorted(["nesterov", "momentum", "lr", "optimizer", "warmup", "seed"])
    assert [p.path for p in m.sampled] == [p for p in order if p not in ("warmup", "seed")]


def test_is_active_follows_when_and_inactive_parents() -> None:
    m = model(CONDITIONAL)
    by_path = {p.path: p for p in m.params}
    momentum, nesterov, lr = by_path["momentum"], by_path["nesterov"], by_path["lr"]
    assert m.is_active(lr, {})
    assert m.is_active(momentum, {"optimizer": "sgd"})
    assert not m.is_active(momentum, {"optimizer": "adam"})
    assert m.is_active(nesterov, {"optimizer": "sgd", "momentum": 0.9})
    assert not m.is_active(nesterov, {"optimizer": "sgd", "momentum": 0.1})
    # momentum is inactive under adam, so nesterov, which depends on it, is inactive too
    assert not m.is_active(nesterov, {"optimizer": "adam"})


def test_sampling_leaves_out_inactive_parameters() -> None:
    m = model(CONDITIONAL)
    samples = draws(m, 400)
    for values in samples:
        assert "seed" not in values and "warmup" not in values  # fixed values are not sampled
        if values["optimizer"] == "adam":
            assert "momentum" not in values and "nesterov" not in values
        else:
            assert 0.0 <= values["momentum"] <= 0.99
            assert ("nesterov" in values) == (values["momentum"] > 0.5)
    kinds = Counter(("momentum" in v, "nesterov" in v) for v in samples)
    assert set(kinds) == {(False, False), (True, False), (True, True)}


def test_fixed_values_respect_when() -> None:
    m = model(CONDITIONAL)
    assert m.fixed_values({"optimizer": "adam"}) == {"warmup": 100, "seed": 0}
    assert m.fixed_values({"optimizer": "sgd"}) == {"seed": 0}


# --------------------------------------------------------------------------- derived, constraints


DERIVED = """\
space:
  hidden: {int: [32, 512]}
  optimizer: {choice: [adam, sgd]}
  momentum: {uniform: [0.0, 0.99], when: "optimizer == 'sgd'"}
derived:
  head_dim: hidden // 8
  double_head: head_dim * 2
  damped: 1 - momentum
constraints:
  - hidden >= 64
  - momentum <= 0.9
  - double_head <= 100
"""


def test_derived_values() -> None:
    m = model(DERIVED)
    out = m.with_derived({"hidden": 128, "optimizer": "sgd", "momentum": 0.25})
    assert out["head_dim"] == 16
    assert out["double_head"] == 32
    assert out["damped"] == 0.75
    # a derived value over an inactive parameter is left out, not an error
    out = m.with_derived({"hidden": 40, "optimizer": "adam"})
    assert out == {"hidden": 40, "optimizer": "adam", "head_dim": 5, "double_head": 10}


def test_violated_skips_constraints_on_inactive_parameters() -> None:
    m = model(DERIVED)
    assert m.violated({"hidden": 128, "optimizer": "sgd", "momentum": 0.5}) == []
    assert m.violated({"hidden": 32, "optimizer": "sgd", "momentum": 0.95}) == [0, 1]
    assert m.violated({"hidden": 32, "optimizer": "adam"}) == [0]  # momentum is inactive
    assert m.violated({"hidden": 512, "optimizer": "adam"}) == [2]  # through derived values


# --------------------------------------------------------------------------- the trial's config


NESTED = """\
  config:
    env_id: CartPole-v1
    seed: 1
    risk_config: {keep: 1, risk_weights: {ulcer_index: 0.1, other: 2}}
space:
  seed: 7
  literal: {value: {a: 1}}
  lr: {loguniform: [1.0e-4, 1.0e-1]}
  risk_config:
    early_stop_threshold: {uniform: [0.6, 0.9]}
    risk_weights:
      drawdown_pct: {uniform: [0.2, 0.4]}
      ulcer_index: {uniform: [0.15, 0.35]}
derived:
  risk_config.risk_weights.total: >-
    risk_config.risk_weights.drawdown_pct + risk_config.risk_weights.ulcer_index
"""


def test_build_config_nests_and_merges_over_objective_config() -> None:
    m = model(NESTED)
    values = {
        "lr": 0.01,
        "risk_config.early_stop_threshold": 0.7,
        "risk_config.risk_weights.drawdown_pct": 0.25,
        "risk_config.risk_weights.ulcer_index": 0.2,
    }
    config = m.build_config(values)
    assert config == {
        "env_id": "CartPole-v1",
        "seed": 7,
        "literal": {"a": 1},
        "lr": 0.01,
        "risk_config": {
            "keep": 1,
            "early_stop_threshold": 0.7,
            "risk_weights": {
                "ulcer_index": 0.2,
                "other": 2,
                "drawdown_pct": 0.25,
                "total": pytest.approx(0.45),
            },
        },
    }
    # the base config is copied, never changed
    config["risk_config"]["keep"] = 99
    config["literal"]["a"] = 99
    again = m.build_config(values)
    assert again["risk_config"]["keep"] == 1
    assert again["literal"] == {"a": 1}
    assert m.base_config["risk_config"]["risk_weights"] == {"ulcer_index": 0.1, "other": 2}


def test_build_config_leaves_out_inactive() -> None:
    m = model(CONDITIONAL)
    config = m.build_config({"lr": 0.01, "optimizer": "adam"})
    assert config == {"lr": 0.01, "optimizer": "adam", "warmup": 100, "seed": 0}


def test_set_path_and_flatten_config() -> None:
    config: dict[str, object] = {"a": 1, "b": {"c": 2}}
    set_path(config, "b.d.e", 3)
    set_path(config, "a.x", 4)  # a scalar in the way becomes a level
    assert config == {"a": {"x": 4}, "b": {"c": 2, "d": {"e": 3}}}
    assert flatten_config(config) == {"a.x": 4, "b.c": 2, "b.d.e": 3}
    assert flatten_config({"l": [1, 2], "e": {}}) == {"l": [1, 2], "e": {}}


# --------------------------------------------------------------------------- sampling


DISTRIBUTIONS = """\
space:
  u: {uniform: [0.9, 0.999]}
  u_step: {uniform: [0.0, 0.5], step: 0.05}
  u_log: {uniform: [1.0e-3, 10.0], log: true}
  lu: {loguniform: [1.0e-4, 1.0]}
  i: {int: [1, 3]}
  i_step: {int: [0, 10], step: 5}
  i_log: {int: [1, 8], log: true}
  i_neg: {int: [-2, 2]}
  c: {choice: [a, [1, 2], 3.5, true]}
  g: {grid: [100, 500]}
"""
N = 3000


@pytest.fixture(scope="module")
def samples() -> list[dict[str, object]]:
    return draws(model(DISTRIBUTIONS), N, seed=1)


def column(samples: list[dict[str, object]], key: str) -> list[object]:
    return [s[key] for s in samples]


def test_uniform_bounds(samples: list[dict[str, object]]) -> None:
    u = column(samples, "u")
    assert all(isinstance(x, float) and 0.9 <= x <= 0.999 for x in u)
    assert 0.93 < sum(u) / N < 0.97


def test_uniform_step_is_on_the_grid_and_reaches_both_ends(samples: list) -> None:
    values = column(samples, "u_step")
    steps = {round(x / 0.05) for x in values}
    assert steps == set(range(11))  # 0.0, 0.05, ..., 0.5: both ends included
    assert all(abs(x - round(x / 0.05) * 0.05) < 1e-9 and 0.0 <= x <= 0.5 for x in values)


@pytest.mark.parametrize(("key", "low", "high"), [("u_log", 1e-3, 10.0), ("lu", 1e-4, 1.0)])
def test_log_scale(samples: list, key: str, low: float, high: float) -> None:
    values = column(samples, key)
    assert all(low <= x <= high for x in values)
    # log-uniform: the geometric middle splits the draws in half
    middle = math.sqrt(low * high)
    below = sum(x < middle for x in values) / N
    assert 0.45 < below < 0.55


def test_int_bounds_are_inclusive(samples: list) -> None:
    assert Counter(column(samples, "i")).keys() == {1, 2, 3}
    assert all(type(x) is int for x in column(samples, "i"))
    assert set(column(samples, "i_step")) == {0, 5, 10}
    assert set(column(samples, "i_neg")) == {-2, -1, 0, 1, 2}
    counts = Counter(column(samples, "i"))
    assert min(counts.values()) > N / 3 * 0.85  # uniform over the three values


def test_int_log(samples: list) -> None:
    values = column(samples, "i_log")
    assert set(values) == set(range(1, 9))
    assert all(type(x) is int for x in values)
    counts = Counter(values)
    assert counts[1] > counts[8]  # log scale favours small values


def test_choice_and_grid(samples: list) -> None:
    choices = column(samples, "c")
    assert {repr(c) for c in choices} == {"'a'", "[1, 2]", "3.5", "True"}
    assert set(column(samples, "g")) == {100, 500}


def test_sampled_lists_are_copies() -> None:
    m = model("space:\n  arch: {choice: [[64, 64]]}\n")
    first = sample_random(m, random.Random(0))
    first["arch"].append(1)
    assert sample_random(m, random.Random(0))["arch"] == [64, 64]


def test_sampling_is_deterministic_for_a_seed() -> None:
    m = model(DISTRIBUTIONS)
    assert draws(m, 50, seed=3) == draws(m, 50, seed=3)
    assert draws(m, 50, seed=3) != draws(m, 50, seed=4)


def test_sample_value_of_a_fixed_leaf() -> None:
    m = model("space:\n  x: {uniform: [0, 1]}\n  fixed: {value: {k: [1]}}\n")
    fixed = next(p for p in m.params if p.path == "fixed")
    value = sample_value(fixed, random.Random(0))
    assert value == {"k": [1]}
    value["k"].append(2)
    assert fixed.fixed_value == {"k": [1]}
