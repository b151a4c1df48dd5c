"""Compile a Spec into an Optuna plan: sampler, pruner, directions, and how each parameter is
suggested. Pure: builds objects, runs nothing; Optuna is imported only when objects are built.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from sweepspec.space import SpaceModel
from sweepspec.spec.root import Spec
from sweepspec.spec.scheduler import (
    AshaScheduler,
    HyperbandScheduler,
    MedianScheduler,
)
from sweepspec.spec.space import ChoiceDist, GridDist, IntDist, LogUniformDist, Param, UniformDist

__all__ = ["SAMPLERS", "OptunaPlan", "compile_optuna", "decode_choice", "encode_choice"]

# spec searcher type -> Optuna sampler class name (in optuna.samplers)
SAMPLERS = {
    "random": "RandomSampler",
    "grid": "GridSampler",
    "tpe": "TPESampler",
    "cmaes": "CmaEsSampler",
    "gp": "GPSampler",
    "qmc": "QMCSampler",
    "nsga2": "NSGAIISampler",
    "hyperopt": "HyperoptSampler",  # ours: sweepspec.run.hyperopt_sampler
}
Direction = Literal["maximize", "minimize"]
DIRECTIONS: dict[str, Direction] = {"max": "maximize", "min": "minimize"}


def encode_choice(value: Any) -> Any:
    """Optuna categoricals hold None/bool/int/float/str: lists are stored as JSON text."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def decode_choice(value: Any, options: list[Any]) -> Any:
    for option in options:
        if encode_choice(option) == value and type(encode_choice(option)) is type(value):
            return option
    return value


@dataclass(frozen=True)
class SuggestSpec:
    """How one parameter is suggested: ``trial.suggest_<method>(path, **kwargs)``."""

    path: str
    method: str  # float | int | categorical
    kwargs: dict[str, Any]
    options: list[Any] = field(default_factory=list)  # decoded choices (categorical)


@dataclass(frozen=True)
class OptunaPlan:
    """Everything the Optuna runner needs, as plain data plus builders."""

    study_name: str
    directions: list[Direction]
    metric_names: list[str]
    sampler: str
    sampler_kwargs: dict[str, Any]
    pruner: str
    pruner_kwargs: dict[str, Any]
    suggest: dict[str, SuggestSpec]
    grid_points: list[dict[str, Any]]
    total_trials: int
    max_t: int | None
    time_attr: str
    space: SpaceModel

    def build_sampler(self, seed: int | None) -> Any:
        import optuna

        kwargs = dict(self.sampler_kwargs)
        if self.sampler == "GridSampler":
            return _grid_sampler_class()(kwargs["search_space"], seed=seed)
        if self.sampler == "HyperoptSampler":
            from sweepspec.run.hyperopt_sampler import HyperoptSampler

            return HyperoptSampler(seed=seed, **kwargs)
        cls = getattr(optuna.samplers, self.sampler)
        try:
            return cls(seed=seed, **kwargs)
        except ImportError as exc:  # e.g. cmaes for CmaEsSampler, torch/scipy for GPSampler
            from sweepspec.errors import Problem, SweepspecError

            raise SweepspecError(
                Problem(
                    f"searcher needs a package that is not installed: {exc}; install "
                    "sweepspec[optuna]",
                    "searcher.type",
                    code="missing-package",
                )
            ) from None

    def build_pruner(self) -> Any:
        import optuna

        return getattr(optuna.pruners, self.pruner)(**self.pruner_kwargs)


def _grid_sampler_class() -> Any:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler calls ``study.stop()`` when the grid is used up, which only
        works inside ``optimize``; sweepspec counts trials itself (``total_trials`` is at most
        the grid's size), so nothing needs stopping here."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return GridSampler


def _suggest_spec(param: Param) -> SuggestSpec:
    node = param.node
    if isinstance(node, UniformDist):
        low, high = node.uniform
        return SuggestSpec(
            param.path, "float", {"low": low, "high": high, "step": node.step, "log": node.log}
        )
    if isinstance(node, LogUniformDist):
        low, high = node.loguniform
        return SuggestSpec(param.path, "float", {"low": low, "high": high, "log": True})
    if isinstance(node, IntDist):
        low, high = node.int
        return SuggestSpec(
            param.path, "int", {"low": low, "high": high, "step": node.step or 1, "log": node.log}
        )
    assert isinstance(node, ChoiceDist | GridDist)
    options = list(getattr(node, param.kind))
    return SuggestSpec(
        param.path, "categorical", {"choices": [encode_choice(v) for v in options]}, options
    )


def _pruner(spec: Spec) -> tuple[str, dict[str, Any], int | None]:
    sched = spec.scheduler
    if isinstance(sched, AshaScheduler):
        return (
            "SuccessiveHalvingPruner",
            {
                "min_resource": sched.grace_period,
                "reduction_factor": max(2, round(sched.reduction_factor)),
                "min_early_stopping_rate": 0,
            },
            sched.max_t,
        )
    if isinstance(sched, HyperbandScheduler):
        return (
            "HyperbandPruner",
            {
                "min_resource": 1,
                "max_resource": sched.max_t,
                "reduction_factor": max(2, round(sched.reduction_factor)),
            },
            sched.max_t,
        )
    if isinstance(sched, MedianScheduler):
        return (
            "MedianPruner",
            {
                "n_startup_trials": sched.min_samples_required,
                "n_warmup_steps": math.ceil(sched.grace_period),
            },
            None,
        )
    return "NopPruner", {}, None


def _grid_points(spec: Spec) -> list[dict[str, Any]]:
    grids = [(p.path, list(getattr(p.node, "grid"))) for p in spec.grid_params()]  # noqa: B009 (mypy: node is a union)
    if not grids:
        return [{}]
    names = [g[0] for g in grids]
    return [
        dict(zip(names, combo, strict=True)) for combo in itertools.product(*(g[1] for g in grids))
    ]


def compile_optuna(spec: Spec, study_name: str | None = None) -> OptunaPlan:
    """The Optuna plan for ``spec`` (pure)."""
    space = SpaceModel.from_spec(spec)
    suggest = {p.path: _suggest_spec(p) for p in space.sampled}
    sampler = SAMPLERS[spec.searcher.type]
    sampler_kwargs: dict[str, Any] = dict(spec.searcher.options)
    if sampler == "GridSampler":
        sampler_kwargs = {
            "search_space": {
                path: s.kwargs["choices"] if s.method == "categorical" else _enumerate(s)
                for path, s in suggest.items()
            }
        }
    pruner, pruner_kwargs, max_t = _pruner(spec)
    grid = _grid_points(spec)
    total = spec.trials.num_samples * len(grid)
    if sampler == "GridSampler":
        size = math.prod(len(v) for v in sampler_kwargs["search_space"].values())
        total = min(spec.trials.num_samples, size)  # the grid's points, each once; capped
    directions = [DIRECTIONS[m] for m in spec.objective.directions.values()]
    return OptunaPlan(
        study_name=study_name or spec.run_name,
        directions=directions,
        metric_names=list(spec.objective.directions),
        sampler=sampler,
        sampler_kwargs=sampler_kwargs,
        pruner=pruner,
        pruner_kwargs=pruner_kwargs,
        suggest=suggest,
        grid_points=grid if grid != [{}] else [],
        total_trials=total,
        max_t=max_t,
        time_attr=spec.scheduler.time_attr,
        space=space,
    )


def _enumerate(s: SuggestSpec) -> list[Any]:
    low, high = s.kwargs["low"], s.kwargs["high"]
    step = s.kwargs.get("step") or 1
    if s.method == "int":
        return list(range(low, high + 1, step))
    n = int((high - low) / step + 1e-9)
    return [low + i * step for i in range(n + 1)]
