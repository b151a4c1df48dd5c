"""SEARCHER_OPTIONS names only real keyword arguments of the samplers they are passed to, and
the searcher options a spec gives are checked against it."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.load import load_text
from sweepspec.spec.searcher import MULTI_OBJECTIVE_SEARCHERS, SEARCHER_OPTIONS, SearcherType

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
    unknown = SEARCHER_OPTIONS[kind] - params
    assert not unknown, f"{cls.__name__} takes no {sorted(unknown)}"
    assert not SEARCHER_OPTIONS[kind] & MANAGED


def test_hyperopt_options_are_real_parameters() -> None:
    tpe = pytest.importorskip("hyperopt.tpe")
    params = _parameters(tpe.suggest)
    unknown = SEARCHER_OPTIONS["hyperopt"] - params
    assert not unknown, f"hyperopt.tpe.suggest takes no {sorted(unknown)}"
    assert not SEARCHER_OPTIONS["hyperopt"] & {"new_ids", "domain", "trials", "seed"}


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


@pytest.mark.parametrize("kind", sorted(SEARCHER_OPTIONS))
def test_listed_options_are_accepted(kind: str) -> None:
    options = "{" + ", ".join(f"{name}: 1" for name in sorted(SEARCHER_OPTIONS[kind])) + "}"
    text = SPEC.format(kind=kind, options=options)
    if kind == "grid":
        text = text.replace("{uniform: [0.0, 1.0]}", "{choice: [0.0, 1.0]}")
    assert load_text(text, "s.yaml").spec.searcher.type == kind


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
