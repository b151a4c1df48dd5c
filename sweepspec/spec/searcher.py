"""How new configs are proposed."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, JsonValue

from sweepspec.spec.base import SpecModel

__all__ = ["MULTI_OBJECTIVE_SEARCHERS", "SEARCHER_OPTIONS", "Searcher", "SearcherType"]

SearcherType = Literal["random", "grid", "tpe", "hyperopt", "cmaes", "gp", "qmc", "nsga2"]

# Options a user may pass to each searcher: the keyword arguments of the underlying sampler
# (Optuna 5.0 / hyperopt 0.3), minus those sweepspec sets itself (seed, search space) and the
# deprecated ones. tests/spec/test_searcher.py checks this table against the real signatures.
SEARCHER_OPTIONS: dict[str, frozenset[str]] = {
    "random": frozenset(),
    "grid": frozenset(),
    "tpe": frozenset(
        {"n_startup_trials", "n_ei_candidates", "multivariate", "group", "constant_liar"}
    ),
    "hyperopt": frozenset({"n_startup_jobs", "n_EI_candidates", "gamma", "prior_weight"}),
    "cmaes": frozenset(
        {
            "n_startup_trials",
            "consider_pruned_trials",
            "popsize",
            "use_separable_cma",
            "with_margin",
            "lr_adapt",
        }
    ),
    "gp": frozenset({"n_startup_trials", "deterministic_objective"}),
    "qmc": frozenset({"qmc_type", "scramble"}),
    "nsga2": frozenset({"population_size", "mutation_prob", "crossover_prob", "swapping_prob"}),
}

MULTI_OBJECTIVE_SEARCHERS = frozenset({"random", "grid", "tpe", "gp", "qmc", "nsga2"})


class Searcher(SpecModel):
    """The search algorithm."""

    type: SearcherType = Field(
        "tpe", description="random | grid | tpe | hyperopt | cmaes | gp | qmc | nsga2"
    )
    seed: int | None = Field(
        None, description="Same spec + seed => same sequence of sampled configs."
    )
    options: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Passed to the underlying sampler; names are checked against its signature.",
    )
