"""Compile a Spec into a Ray Tune plan: the search plan (the same on every backend), the
scheduler and its PBT mutations, the stops, resources and budget. Pure: builds plain data,
imports neither Ray nor Optuna nor anything of the run layer; the driver
(:mod:`sweepspec.backends.ray_backend.session`) builds Ray's objects from it.

One searcher adapter for every ``searcher.type``: Ray's ``OptunaSearch`` over a define-by-run
space that suggests each parameter exactly as the Optuna backend does (the search plan's
``suggest`` table, :func:`sweepspec.search.params.sample_params`) with the very sampler the
Optuna backend builds, so the same spec and seed give the same configs on both backends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sweepspec.search.plan import SearchPlan, compile_search
from sweepspec.search.space import SpaceModel
from sweepspec.search.stops import StopRule, stop_rule
from sweepspec.spec.backend import RayBackend
from sweepspec.spec.root import Spec
from sweepspec.spec.scheduler import (
    AshaScheduler,
    HyperbandScheduler,
    MedianScheduler,
    PbtScheduler,
)
from sweepspec.spec.space import ChoiceDist, GridDist, IntDist, LogUniformDist, UniformDist
from sweepspec.units import format_duration

__all__ = [
    "RAY_SCHEDULERS",
    "TRAINABLE_NAME",
    "RayPlan",
    "compile_ray",
    "describe_ray",
    "pbt_mutations",
]

#: The trainable's name; Ray compares it on restore, so it never changes.
TRAINABLE_NAME = "sweepspec_trainable"
#: Trials shorter than this rarely pay for Ray's start-up and per-trial overhead.
RAY_SHORT_TRIAL_S = 10.0

RAY_SCHEDULERS = {
    "fifo": "FIFOScheduler",
    "asha": "ASHAScheduler",
    "hyperband": "HyperBandScheduler",
    "median": "MedianStoppingRule",
    "pbt": "PopulationBasedTraining",
}


@dataclass(frozen=True)
class RayPlan:
    """Everything the Ray backend's driver and trials need, as plain data (it is shipped to
    every trial with ``tune.with_parameters``)."""

    search: SearchPlan
    #: the run's name: the Optuna study inside ``OptunaSearch``
    study_name: str
    metric: str | list[str]
    mode: str | list[str]
    scheduler: str
    scheduler_kwargs: dict[str, Any]
    #: PBT's ``hyperparam_mutations`` as ``(tune function, *args)`` per parameter
    mutations: dict[str, tuple[Any, ...]]
    stop: StopRule
    target: dict[str, float] | None
    time_budget_s: float | None
    max_failed: int | None
    max_t: int | None
    time_attr: str
    cpu: float
    gpu: float
    memory: int | None
    max_concurrent: int | None
    max_failures: int
    timeout_s: float | None
    keep_checkpoints: int | None
    reuse_processes: bool = True
    #: snapshot Ray's state after every step that adds a trial too: under Ray Client
    #: (``ray://``) a resume cannot square the ledger with the snapshot (see session.py)
    snapshot_each_trial: bool = False

    @property
    def space(self) -> SpaceModel:
        return self.search.space

    @property
    def num_samples(self) -> int:
        return self.search.total_trials

    @property
    def directions(self) -> dict[str, str]:
        return self.search.objectives

    @property
    def single_metric(self) -> str | None:
        return self.search.single_metric

    @property
    def resources(self) -> dict[str, float]:
        """``tune.with_resources`` argument (fractional GPUs allowed)."""
        out = {"cpu": self.cpu}
        if self.gpu:
            out["gpu"] = self.gpu
        return out


def pbt_mutations(spec: Spec, space: SpaceModel) -> dict[str, tuple[Any, ...]]:
    """``scheduler.mutations`` (default: every sampled parameter) as ``(tune function, *args)``:
    uniform -> ``uniform``/``quniform``/``loguniform``, int -> ``randint(low, high + 1)``
    (``qrandint``/``lograndint`` with step/log), choice and grid -> the list of values.

    A conditional parameter (``when``) is left out of the default: PBT would mutate it in
    trials where it does not exist."""
    sched = spec.scheduler
    names = getattr(sched, "mutations", None)
    out: dict[str, tuple[Any, ...]] = {}
    for p in space.sampled:
        if names is not None and p.path not in names:
            continue
        if names is None and p.when:
            continue
        node = p.node
        if isinstance(node, UniformDist):
            low, high = node.uniform
            if node.log:
                out[p.path] = ("loguniform", low, high)
            elif node.step:
                out[p.path] = ("quniform", low, high, node.step)
            else:
                out[p.path] = ("uniform", low, high)
        elif isinstance(node, LogUniformDist):
            out[p.path] = ("loguniform", *node.loguniform)
        elif isinstance(node, IntDist):
            low, high = node.int
            if node.log:
                out[p.path] = ("lograndint", low, high + 1)
            elif node.step and node.step > 1:
                out[p.path] = ("qrandint", low, high, node.step)  # upper bound inclusive
            else:
                out[p.path] = ("randint", low, high + 1)
        elif isinstance(node, ChoiceDist | GridDist):
            out[p.path] = ("choice", list(getattr(node, p.kind)))
    return out


def _scheduler(spec: Spec, space: SpaceModel) -> tuple[str, dict[str, Any], dict[str, Any]]:
    sched = spec.scheduler
    base = {"time_attr": sched.time_attr}
    if isinstance(sched, AshaScheduler):
        return (
            "asha",
            {
                **base,
                "max_t": sched.max_t,
                "grace_period": sched.grace_period,
                "reduction_factor": sched.reduction_factor,
                "brackets": sched.brackets,
            },
            {},
        )
    if isinstance(sched, HyperbandScheduler):
        return (
            "hyperband",
            {**base, "max_t": sched.max_t, "reduction_factor": sched.reduction_factor},
            {},
        )
    if isinstance(sched, MedianScheduler):
        # Ray's defaults are wall-clock seconds; sweepspec counts in time_attr units
        return (
            "median",
            {
                **base,
                "grace_period": float(sched.grace_period),
                "min_samples_required": sched.min_samples_required,
            },
            {},
        )
    if isinstance(sched, PbtScheduler):
        return (
            "pbt",
            {
                **base,
                "perturbation_interval": sched.perturbation_interval,
                "quantile_fraction": sched.quantile_fraction,
                "resample_probability": sched.resample_probability,
            },
            pbt_mutations(spec, space),
        )
    return "fifo", {}, {}


def _max_t(spec: Spec) -> int | None:
    sched = spec.scheduler
    return sched.max_t if isinstance(sched, AshaScheduler | HyperbandScheduler) else None


def compile_ray(spec: Spec) -> RayPlan:
    """The Ray plan for ``spec`` (pure: nothing is started or imported from Ray)."""
    search = compile_search(spec)
    directions = search.objectives
    names = list(directions)
    metric: str | list[str] = names[0] if len(names) == 1 else names
    mode: str | list[str] = (
        directions[names[0]] if len(names) == 1 else [directions[n] for n in names]
    )
    scheduler, kwargs, mutations = _scheduler(spec, search.space)
    per = spec.resources.per_trial
    conc = spec.resources.max_concurrent
    address = spec.backend.address if isinstance(spec.backend, RayBackend) else None
    return RayPlan(
        search=search,
        study_name=spec.run_name,
        metric=metric,
        mode=mode,
        scheduler=scheduler,
        scheduler_kwargs=kwargs,
        mutations=mutations,
        stop=stop_rule(spec),
        target=dict(spec.stop.sweep.target) if spec.stop.sweep.target else None,
        time_budget_s=spec.stop.sweep.time_budget,
        max_failed=spec.trials.max_failed,
        max_t=_max_t(spec),
        time_attr=spec.scheduler.time_attr,
        cpu=per.cpu,
        gpu=per.gpu,
        memory=per.memory,
        max_concurrent=None if conc == "auto" else int(conc),
        max_failures=spec.trials.max_retries,
        timeout_s=spec.trials.timeout,
        # PBT restores a donor's checkpoint that Ray would already have deleted under a
        # bound ("does not exist on storage anymore", ray#8441): under PBT, keep them all
        keep_checkpoints=None if scheduler == "pbt" else 2,
        reuse_processes=spec.backend.reuse_processes,
        snapshot_each_trial=str(address or "").startswith("ray://"),
    )


def _fmt(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def describe_ray(spec: Spec, experiment: str) -> list[str]:
    """What ``spec`` compiles to on Ray, for ``sweepspec plan`` (no Ray started);
    ``experiment``: the Ray experiment's directory in the run directory."""
    plan = compile_ray(spec)
    o = plan.search
    address = spec.backend.address if isinstance(spec.backend, RayBackend) else None
    where = (
        "a local Ray sized to this machine"
        if address in (None, "local")
        else f"the Ray cluster at {address}"
    )
    sampler_args = "".join(f", {k}={v!r}" for k, v in o.sampler_kwargs.items())
    lines = [
        f"ray tune Tuner on {where}, experiment {experiment!r} in <storage>/{spec.run_name}/",
        f"searcher OptunaSearch(define-by-run, sampler=optuna {o.sampler}(seed={o.seed}"
        f"{sampler_args}), metric={plan.metric!r}, mode={plan.mode!r}"
        + (f", points_to_evaluate={len(o.try_first)} try_first" if o.try_first else "")
        + ")",
    ]
    if o.score is not None:
        lines.append(f"metric 'score' = {o.score.text}, from each report's own metrics")
    sched = f"scheduler {RAY_SCHEDULERS[plan.scheduler]}({_fmt(plan.scheduler_kwargs)})"
    if plan.mutations:
        muts = ", ".join(
            f"{k}: {args[0]!r}"
            if kind == "choice"
            else f"{k}: tune.{kind}({', '.join(repr(a) for a in args)})"
            for k, (kind, *args) in plan.mutations.items()
        )
        sched += f", mutations {{{muts}}}"
    lines.append(sched)
    stops = [f"{n} {op} {v:g}" for n, op, v in plan.stop.thresholds]
    sweep = []
    if plan.time_budget_s:
        sweep.append(f"time_budget_s={plan.time_budget_s:g}")
    if plan.target:
        sweep.append(f"stop all when {plan.target}")
    if plan.max_failed:
        sweep.append(f"stop all after {plan.max_failed} failed")
    lines.append("stop: " + ("; ".join(stops + sweep) if stops or sweep else "none"))
    conc = "auto (what the cluster fits)" if plan.max_concurrent is None else plan.max_concurrent
    lines.append(f"resources tune.with_resources({plan.resources}), max_concurrent_trials={conc}")
    timeout = format_duration(plan.timeout_s) if plan.timeout_s else "none"
    lines.append(
        f"num_samples={plan.num_samples}, FailureConfig(max_failures="
        f"{plan.max_failures}), per-trial timeout {timeout}, reuse_actors=True, trial "
        f"processes {'reused' if plan.reuse_processes else 'forked for each trial'}"
    )
    if plan.scheduler in ("pbt", "hyperband"):
        lines.append(
            f"note: {plan.scheduler} restarts trials from checkpoints; the objective "
            "must pass checkpoint= to trial.report"
            + (" (pbt fails a trial that does not)" if plan.scheduler == "pbt" else "")
        )
    if plan.timeout_s and plan.timeout_s < RAY_SHORT_TRIAL_S:
        lines.append(
            f"warning: trials of under {RAY_SHORT_TRIAL_S:g} s rarely pay for Ray's "
            "start-up and per-trial overhead; backend: {type: optuna} runs them faster"
        )
    return lines
