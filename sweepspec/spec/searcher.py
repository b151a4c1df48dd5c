"""How new configs are proposed."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, JsonValue

from sweepspec.spec.base import SpecModel
from sweepspec.suggest import did_you_mean

__all__ = ["MULTI_OBJECTIVE_SEARCHERS", "SEARCHER_OPTIONS", "Option", "Searcher", "SearcherType"]

SearcherType = Literal["random", "grid", "tpe", "hyperopt", "cmaes", "gp", "qmc", "nsga2"]


@dataclass(frozen=True)
class Option:
    """What a searcher option takes: its kind and, for numbers, its range (both ends
    included unless ``exclusive_min``), for text its choices; ``nullable``: also ``null``."""

    kind: Literal["int", "float", "bool", "str"]
    minimum: float | None = None
    maximum: float | None = None
    exclusive_min: bool = False
    choices: tuple[str, ...] = ()
    nullable: bool = False

    def problem(self, value: object) -> str | None:
        """What is wrong with ``value`` for this option, or None."""
        if value is None:
            return None if self.nullable else "takes a value, not null"
        if self.kind == "bool":
            return None if isinstance(value, bool) else f"takes true or false, but got {value!r}"
        if self.kind == "str":
            if isinstance(value, str) and (not self.choices or value in self.choices):
                return None
            hint = did_you_mean(str(value), self.choices)
            return f"takes one of {', '.join(self.choices)}, but got {value!r}{hint}"
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or (self.kind == "int" and not isinstance(value, int)):
            return f"takes {'an integer' if self.kind == 'int' else 'a number'}, but got {value!r}"
        assert isinstance(value, int | float)
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int too large for a float
            finite = False
        if not finite:
            return f"takes a finite number, but got {str(value)[:40]}"
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.exclusive_min else value < low):
            return f"must be {'>' if self.exclusive_min else '>='} {low:g}, but got {value!r}"
        if high is not None and value > high:
            return f"must be <= {high:g}, but got {value!r}"
        return None


_COUNT = Option("int", 0, 10**6)
_FLAG = Option("bool")
_PROBABILITY = Option("float", 0, 1, nullable=True)

# Options a user may pass to each searcher: the keyword arguments of the underlying sampler
# (Optuna 5.0 / hyperopt 0.3), minus those sweepspec sets itself (seed, search space) and the
# deprecated ones, with the values each takes. tests/spec/test_searcher.py checks the names
# against the real signatures; ``run`` and ``plan`` also build the sampler before any trial, so
# what only the library knows is reported there, located in the spec.
SEARCHER_OPTIONS: dict[str, dict[str, Option]] = {
    "random": {},
    "grid": {},
    "tpe": {
        "n_startup_trials": _COUNT,
        "n_ei_candidates": Option("int", 1, 10**6),
        "multivariate": _FLAG,
        "group": _FLAG,
        "constant_liar": _FLAG,
    },
    "hyperopt": {
        "n_startup_jobs": _COUNT,
        "n_EI_candidates": Option("int", 1, 10**6),
        "gamma": Option("float", 0, 1, exclusive_min=True),
        "prior_weight": Option("float", 0, 10**6, exclusive_min=True),
    },
    "cmaes": {
        "n_startup_trials": _COUNT,
        "consider_pruned_trials": _FLAG,
        "popsize": Option("int", 2, 10**6, nullable=True),
        "use_separable_cma": _FLAG,
        "with_margin": _FLAG,
        "lr_adapt": _FLAG,
    },
    "gp": {"n_startup_trials": _COUNT, "deterministic_objective": _FLAG},
    "qmc": {"qmc_type": Option("str", choices=("sobol", "halton")), "scramble": _FLAG},
    "nsga2": {
        "population_size": Option("int", 2, 10**6),
        "mutation_prob": _PROBABILITY,
        "crossover_prob": Option("float", 0, 1),
        "swapping_prob": Option("float", 0, 1),
    },
}

MULTI_OBJECTIVE_SEARCHERS = frozenset({"random", "grid", "tpe", "gp", "qmc", "nsga2"})


class Searcher(SpecModel):
    """The search algorithm."""

    type: SearcherType = Field(
        "tpe", description="random | grid | tpe | hyperopt | cmaes | gp | qmc | nsga2"
    )
    seed: int | None = Field(
        None,
        ge=0,
        le=2**32 - 1,
        description="Same spec + seed => same sequence of sampled configs (0 to 2**32 - 1).",
    )
    options: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Passed to the underlying sampler; names are checked against its signature.",
    )
