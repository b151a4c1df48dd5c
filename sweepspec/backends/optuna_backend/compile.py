"""Compile a Spec into an Optuna plan: the search plan (the same on every backend), the pruner
that stands for the spec's scheduler, and the per-trial stops. Pure: builds plain data and
imports neither Optuna nor anything of the run layer."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweepspec.search.plan import SearchPlan, compile_search
from sweepspec.search.stops import StopRule, stop_rule
from sweepspec.spec.root import Spec
from sweepspec.spec.scheduler import AshaScheduler, HyperbandScheduler, MedianScheduler

__all__ = ["OptunaPlan", "compile_optuna", "describe_optuna", "rung_steps"]


@dataclass(frozen=True)
class OptunaPlan:
    """Everything the Optuna backend's runner needs, as plain data."""

    search: SearchPlan
    study_name: str
    #: ``optuna.pruners`` class name and its keyword arguments
    pruner: str
    pruner_kwargs: dict[str, Any]
    #: the scheduler's ``max_t`` (a trial that reaches it is stopped as COMPLETE), if any
    max_t: int | None
    time_attr: str
    stop: StopRule
    #: promotion-based ASHA: the steps of its rungs below ``max_t`` (None: not that mode)
    rungs: tuple[int, ...] | None = None
    reduction_factor: int = 2

    @property
    def total_trials(self) -> int:
        return self.search.total_trials

    @property
    def pruning(self) -> bool:
        """Whether the pruner (or promotion-based ASHA) looks at reports (it ranks one
        metric)."""
        ranks = self.pruner != "NopPruner" or self.rungs is not None
        return ranks and len(self.search.metric_names) == 1

    @property
    def promoting(self) -> bool:
        """Whether trials pause at rungs and are promoted (``asha`` with ``mode: promote``)."""
        return self.rungs is not None and self.pruning


def rung_steps(grace_period: int, reduction_factor: int, max_t: int) -> tuple[int, ...]:
    """The steps of the rungs below ``max_t``: grace_period, grace_period * rf, ..."""
    steps: list[int] = []
    step = grace_period
    while step < max_t:
        steps.append(step)
        step *= reduction_factor
    return tuple(steps)


def _pruner(spec: Spec) -> tuple[str, dict[str, Any], int | None]:
    """The spec's scheduler as an Optuna pruner: ``(class name, kwargs, max_t)``."""
    sched = spec.scheduler
    if isinstance(sched, AshaScheduler) and sched.mode == "promote":
        return "NopPruner", {}, sched.max_t  # the runner pauses and promotes (promotion.py)
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


def compile_optuna(spec: Spec, study_name: str | None = None) -> OptunaPlan:
    """The Optuna plan for ``spec`` (pure)."""
    pruner, pruner_kwargs, max_t = _pruner(spec)
    sched = spec.scheduler
    rungs, rf = None, 2
    if isinstance(sched, AshaScheduler):
        rf = max(2, round(sched.reduction_factor))
        if sched.mode == "promote":
            rungs = rung_steps(sched.grace_period, rf, sched.max_t)
    return OptunaPlan(
        search=compile_search(spec),
        study_name=study_name or spec.run_name,
        pruner=pruner,
        pruner_kwargs=pruner_kwargs,
        max_t=max_t,
        time_attr=spec.scheduler.time_attr,
        stop=stop_rule(spec),
        rungs=rungs,
        reduction_factor=rf,
    )


def describe_optuna(plan: OptunaPlan, concurrency: str) -> list[str]:
    """What ``plan`` runs, for ``sweepspec plan`` (``concurrency``: the trials at once here)."""
    s = plan.search
    kwargs = "".join(f", {k}={v!r}" for k, v in s.sampler_kwargs.items())
    pruner_args = ", ".join(f"{k}={v!r}" for k, v in plan.pruner_kwargs.items())
    pruner = f"pruner optuna.pruners.{plan.pruner}({pruner_args})"
    if plan.rungs is not None:
        pruner = (
            f"promotion-based ASHA: trials pause at steps {list(plan.rungs)} and resume from "
            f"their checkpoint when in the top 1/{plan.reduction_factor} (max_t {plan.max_t})"
        )
    return [
        f"optuna study {plan.study_name!r}, directions {s.directions}"
        + (f" of score = {s.score.text}" if s.score is not None else ""),
        f"sampler optuna.samplers.{s.sampler}(seed={s.seed}{kwargs})",
        pruner,
        f"{len(s.suggest)} sampled parameter(s), {len(s.grid_points) or 1} grid point(s)",
        f"{plan.total_trials} trials, {concurrency}",
    ]
