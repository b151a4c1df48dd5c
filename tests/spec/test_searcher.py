"""SEARCHER_OPTIONS names only real keyword arguments of the samplers they are passed to, and
the searcher options a spec gives are checked against it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.load import load_text
from sweepspec.search.check import check_sampler
from sweepspec.search.plan import compile_search
from sweepspec.spec.searcher import (
    MULTI_OBJECTIVE_SEARCHERS,
    SEARCHER_OPTIONS,
    Option,
    SearcherType,
)

optuna = pytest.importorskip("optuna")

OPTUNA_SAMPLERS = {
    "tpe": "TPESampler",
    "random": "RandomSampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "nsga2": "NSGAIISampler",
    "grid": "GridSampler",
}
# set by sweepspec itself, never by a spec's options
MANAGED = {"seed", "search_space"}


def _parameters(func: Any) -> set[str]:
    return {
        name
        for name, p in inspect.signature(func).parameters.items()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and name != "self"
    }


def test_table_covers_every_searcher_type() -> None:
    assert set(SEARCHER_OPTIONS) == set(SearcherType.__args__)
    assert set(OPTUNA_SAMPLERS) | {"hyperopt"} == set(SEARCHER_OPTIONS)
    assert set(MULTI_OBJECTIVE_SEARCHERS) <= set(SEARCHER_OPTIONS)


@pytest.mark.parametrize("kind", sorted(OPTUNA_SAMPLERS))
def test_optuna_sampler_options_are_real_parameters(kind: str) -> None:
    cls = getattr(optuna.samplers, OPTUNA_SAMPLERS[kind])
    params = _parameters(cls.__init__)
    unknown = set(SEARCHER_OPTIONS[kind]) - params
    assert not unknown, f"{cls.__name__} takes no {sorted(unknown)}"
    assert not set(SEARCHER_OPTIONS[kind]) & MANAGED


def test_hyperopt_options_are_real_parameters() -> None:
    tpe = pytest.importorskip("hyperopt.tpe")
    params = _parameters(tpe.suggest)
    unknown = set(SEARCHER_OPTIONS["hyperopt"]) - params
    assert not unknown, f"hyperopt.tpe.suggest takes no {sorted(unknown)}"
    assert not set(SEARCHER_OPTIONS["hyperopt"]) & {"new_ids", "domain", "trials", "seed"}


def test_multi_objective_searchers_support_several_objectives() -> None:
    # CMA-ES and hyperopt's TPE optimise one value; the others accept a multi-objective study
    assert "cmaes" not in MULTI_OBJECTIVE_SEARCHERS
    assert "hyperopt" not in MULTI_OBJECTIVE_SEARCHERS
    assert "nsga2" in MULTI_OBJECTIVE_SEARCHERS


SPEC = """\
sweepspec: 1
objective: {{function: train:main, metric: loss, mode: min}}
space:
  x: {{uniform: [0.0, 1.0]}}
  n: {{int: [1, 4]}}
searcher:
  type: {kind}
  options: {options}
"""


def _valid(option: Option) -> object:
    """A value the option takes (its lower end for numbers)."""
    if option.kind == "bool":
        return False  # (CMA-ES refuses some flags together: the sampler check says so)
    if option.kind == "str":
        return option.choices[0]
    low = 0.5 if option.exclusive_min else (option.minimum or 0)
    return int(max(low, 1)) if option.kind == "int" else float(min(low, option.maximum or low))


def _yaml(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


@pytest.mark.parametrize("kind", sorted(SEARCHER_OPTIONS))
def test_listed_options_are_accepted_by_the_spec_and_by_the_sampler(kind: str) -> None:
    options = {name: _valid(o) for name, o in sorted(SEARCHER_OPTIONS[kind].items())}
    text = SPEC.format(
        kind=kind, options="{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in options.items()) + "}"
    )
    if kind == "grid":
        text = text.replace("{uniform: [0.0, 1.0]}", "{choice: [0.0, 1.0]}")
    spec = load_text(text, "s.yaml").spec
    assert spec.searcher.type == kind
    plan = compile_search(spec)
    check_sampler(plan)  # the library takes them too, and samples with them


def test_options_the_library_refuses_together_are_reported_before_any_trial() -> None:
    text = SPEC.format(kind="cmaes", options="{lr_adapt: true, use_separable_cma: true}")
    plan = compile_search(load_text(text, "s.yaml").spec)  # each value is fine alone
    with pytest.raises(SweepspecError) as info:
        check_sampler(plan)
    (problem,) = info.value.problems
    assert problem.path.startswith("searcher.options.") and problem.code == "searcher"
    assert "CmaEsSampler" in problem.message and "lr_adapt" in problem.message


@pytest.mark.parametrize(
    ("kind", "option", "value", "message"),
    [
        ("cmaes", "popsize", "-1", "cmaes option popsize must be >= 2, but got -1"),
        ("qmc", "qmc_type", "bogus", "qmc option qmc_type takes one of sobol, halton"),
        ("qmc", "qmc_type", "sobl", "(did you mean 'sobol'?)"),
        ("nsga2", "mutation_prob", ".inf", "nsga2 option mutation_prob takes a finite number"),
        ("nsga2", "crossover_prob", "1.5", "must be <= 1, but got 1.5"),
        ("tpe", "multivariate", "1", "tpe option multivariate takes true or false, but got 1"),
        ("tpe", "n_startup_trials", "2.5", "takes an integer, but got 2.5"),
        ("hyperopt", "gamma", "0", "hyperopt option gamma must be > 0, but got 0"),
        ("nsga2", "population_size", "null", "takes a value, not null"),
    ],
)
def test_an_option_value_the_sampler_rejects_is_a_located_error(
    kind: str, option: str, value: str, message: str
) -> None:
    with pytest.raises(SweepspecError) as info:
        load_text(SPEC.format(kind=kind, options=f"{{{option}: {value}}}"), "s.yaml")
    (problem,) = info.value.problems
    assert problem.path == f"searcher.options.{option}" and problem.code == "option-value"
    assert problem.location is not None and problem.location.line == 8
    assert message in problem.message, problem.message


@pytest.mark.parametrize(
    ("kind", "option", "hint"),
    [
        ("tpe", "n_startup_trial", "n_startup_trials"),
        ("hyperopt", "n_ei_candidates", "n_EI_candidates"),
        ("cmaes", "popsiz", "popsize"),
        ("random", "seed", None),
        ("tpe", "seed", None),
    ],
)
def test_unknown_option_is_an_error(kind: str, option: str, hint: str | None) -> None:
    with pytest.raises(SweepspecError) as info:
        load_text(SPEC.format(kind=kind, options=f"{{{option}: 3}}"), "s.yaml")
    (problem,) = info.value.problems
    assert problem.path == f"searcher.options.{option}"
    assert problem.location.line == 8
    assert f"takes no option {option!r}" in problem.message
    if hint:
        assert f"did you mean '{hint}'" in problem.message
