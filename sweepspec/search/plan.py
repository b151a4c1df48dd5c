"""The search plan of a spec, the same for every backend: how each parameter is suggested,
which sampler runs (and with which options), the grid points, ``try_first``, the directions
and the number of trials. Pure: builds plain data, imports no search library."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from sweepspec.records import final_values
from sweepspec.search.grid import grid_points, grid_search_space, grid_size
from sweepspec.search.params import SuggestSpec, encode_params, suggest_spec
from sweepspec.search.score import SCORE, Score, score_of
from sweepspec.search.space import SpaceModel, flatten_config
from sweepspec.spec.root import Spec

__all__ = ["DIRECTIONS", "SAMPLERS", "Direction", "SearchPlan", "compile_search", "trial_count"]

#: spec searcher type -> Optuna sampler class name (``optuna.samplers``; ``HyperoptSampler`` is
#: sweepspec's own, :mod:`sweepspec.search.hyperopt_sampler`)
SAMPLERS = {
    "random": "RandomSampler",
    "grid": "GridSampler",
    "tpe": "TPESampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "nsga2": "NSGAIISampler",
    "hyperopt": "HyperoptSampler",
}
Direction = Literal["maximize", "minimize"]
DIRECTIONS: dict[str, Direction] = {"max": "maximize", "min": "minimize"}


def trial_count(spec: Spec) -> int:
    """The trials a sweep of ``spec`` finishes: ``num_samples`` for each grid point, or for
    ``searcher: grid`` the finite space's size, capped at ``num_samples`` (each point once).
    The one count that ``run``, ``status``, ``results``, ``plan`` and tracking all use; a spec
    with a larger ``num_samples`` (an extension) counts the larger budget."""
    num_samples = spec.trials.num_samples
    if spec.searcher.type == "grid":
        size = math.prod(p.size or 1 for p in spec.sampled_params())
        return min(num_samples, size)
    return num_samples * grid_size(spec)


@dataclass(frozen=True)
class SearchPlan:
    """What every backend's searcher does with a spec."""

    space: SpaceModel
    suggest: dict[str, SuggestSpec]
    directions: list[Direction]
    #: metric name -> "max" | "min", in the spec's order
    objectives: dict[str, str]
    sampler: str
    sampler_kwargs: dict[str, Any]
    seed: int | None
    #: every combination of the ``grid`` leaves (empty without any)
    grid_points: tuple[dict[str, Any], ...]
    #: ``try_first`` entries as encoded params of the sampled parameters they name
    try_first: tuple[dict[str, Any], ...]
    total_trials: int
    #: ``objective.score``: then ``objectives`` is ``{"score": mode}``
    score: Score | None = None

    @property
    def metric_names(self) -> list[str]:
        """The names of the optimised values (``["score"]`` for a spec with a score)."""
        return list(self.objectives)

    def scored(self, report: Mapping[str, Any]) -> Mapping[str, Any]:
        """``report`` with its score (when the spec has one and the report's values give
        it, :meth:`Score.of`); else ``report`` itself."""
        if self.score is None:
            return report
        value = self.score.of(report)
        return report if value is None else {**report, SCORE: value}

    def final_values(self, metrics: dict[str, Any]) -> list[float] | str:
        """A finished trial's objective values from its final ``metrics``, or why it fails
        (:func:`sweepspec.records.final_values`); with a score, the score is computed and set
        in ``metrics`` first (:meth:`Score.fill`)."""
        if self.score is not None:
            problem = self.score.fill(metrics)
            if problem is not None:
                return problem
        return final_values(metrics, self.metric_names)

    @property
    def single_metric(self) -> str | None:
        names = self.metric_names
        return names[0] if len(names) == 1 else None


def compile_search(spec: Spec) -> SearchPlan:
    """The search plan for ``spec`` (pure)."""
    space = SpaceModel.from_spec(spec)
    suggest = {p.path: suggest_spec(p) for p in space.sampled}
    sampler = SAMPLERS[spec.searcher.type]
    kwargs: dict[str, Any] = dict(spec.searcher.options)
    if sampler == "GridSampler":
        kwargs = {"search_space": grid_search_space(suggest)}
    objectives: dict[str, str] = dict(spec.objective.directions)
    return SearchPlan(
        space=space,
        suggest=suggest,
        directions=[DIRECTIONS[m] for m in objectives.values()],
        objectives=objectives,
        sampler=sampler,
        sampler_kwargs=kwargs,
        seed=spec.searcher.seed,
        grid_points=grid_points(spec),
        try_first=tuple(encode_params(suggest, flatten_config(e)) for e in spec.try_first),
        total_trials=trial_count(spec),
        score=score_of(spec),
    )
