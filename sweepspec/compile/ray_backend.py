"""Compile a Spec into a Ray Tune plan: searcher, scheduler, stoppers, resources.

Pure: :func:`compile_ray` builds plain data and runs nothing; Ray is imported only by the
``build_*`` methods (through :mod:`sweepspec.run.ray_driver`).

One searcher adapter for every ``searcher.type``: Ray's ``OptunaSearch`` with a define-by-run
space (:class:`SpecSpace`, a picklable class instance that suggests each parameter exactly as
the Optuna backend does: same order, same ``suggest_*`` calls and arguments from
:class:`~sweepspec.compile.optuna_backend.OptunaPlan`) and the very sampler the Optuna backend
builds (``OptunaPlan.build_sampler(seed)``, which covers ``hyperopt`` through our
``HyperoptSampler``). The same spec and seed therefore give the same sequence of configs on
both backends.

Constraints: the adapter (``SpecSearch.suggest``) asks the study again when a sampled config
breaks a constraint, telling the rejected sample to the sampler exactly as the Optuna backend
does (``rejected`` user attribute, ``set_constraint``, the worst value so far or FAIL). Ray never
sees a rejected config, so rejections never count toward ``num_samples``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sweepspec.compile.optuna_backend import OptunaPlan, compile_optuna, decode_choice
from sweepspec.space import SpaceModel
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
    "EXPERIMENT_NAME",
    "TRAINABLE_NAME",
    "RayPlan",
    "SpecSpace",
    "compile_ray",
    "describe_ray",
    "pbt_mutations",
    "sample_params",
]

#: The Ray experiment directory inside the run directory (``RunConfig(name=...)``): fixed,
#: so that a re-run finds it (ray-project/ray#36062).
EXPERIMENT_NAME = "tune"
#: The trainable's name; Ray compares it on restore, so it never changes.
TRAINABLE_NAME = "sweepspec_trainable"

RAY_SCHEDULERS = {
    "fifo": "FIFOScheduler",
    "asha": "ASHAScheduler",
    "hyperband": "HyperBandScheduler",
    "median": "MedianStoppingRule",
    "pbt": "PopulationBasedTraining",
}


def sample_params(plan: OptunaPlan, trial: Any) -> dict[str, Any]:
    """Suggest the active parameters on an Optuna ``trial``: the same order, calls and arguments
    as the Optuna backend (``OptunaRunner._sample``); choices come back decoded."""
    values: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for p in plan.space.params:
        if not plan.space.is_active(p, context):
            continue
        if p.is_fixed:
            context[p.path] = p.fixed_value
            continue
        s = plan.suggest[p.path]
        if s.method == "float":
            v: Any = trial.suggest_float(p.path, **s.kwargs)
        elif s.method == "int":
            v = trial.suggest_int(p.path, **s.kwargs)
        else:
            v = decode_choice(trial.suggest_categorical(p.path, s.kwargs["choices"]), s.options)
        values[p.path] = v
        context[p.path] = v
    return values


class SpecSpace:
    """The define-by-run space for ``OptunaSearch``: a picklable instance (Ray saves the
    searcher with plain pickle, so a closure would break the first experiment snapshot).

    Calling it suggests every active parameter (:func:`sample_params`) and returns the
    sampled values (choices decoded) plus the active fixed values, as flat dotted paths."""

    def __init__(self, plan: OptunaPlan) -> None:
        self.plan = plan

    def sample(self, trial: Any) -> dict[str, Any]:
        return sample_params(self.plan, trial)

    def __call__(self, trial: Any) -> dict[str, Any]:
        values = self.sample(trial)
        return {**self.plan.space.fixed_values(values), **values}


@dataclass(frozen=True)
class RayPlan:
    """Everything the Ray runner needs, as plain data plus builders (Ray imported lazily)."""

    optuna: OptunaPlan
    metric: str | list[str]
    mode: str | list[str]
    num_samples: int
    seed: int | None
    try_first: list[dict[str, Any]]
    scheduler: str
    scheduler_kwargs: dict[str, Any]
    mutations: dict[str, tuple[Any, ...]]
    stop_trial: list[tuple[str, str, float]]
    target: dict[str, float] | None
    time_budget_s: float | None
    max_failed: int | None
    cpu: float
    gpu: float
    memory: int | None
    max_concurrent: int | None
    max_failures: int
    timeout_s: float | None
    keep_checkpoints: int | None
    directions: Mapping[str, str] = field(default_factory=dict)
    reuse_processes: bool = True
    #: snapshot Ray's state after every step that adds a trial too: under Ray Client
    #: (``ray://``) a resume cannot square the ledger with the snapshot (see ray_session)
    snapshot_each_trial: bool = False

    @property
    def space(self) -> SpaceModel:
        return self.optuna.space

    @property
    def single_metric(self) -> str | None:
        return self.metric if isinstance(self.metric, str) else None

    @property
    def resources(self) -> dict[str, float]:
        """``tune.with_resources`` argument (fractional GPUs allowed)."""
        out = {"cpu": self.cpu}
        if self.gpu:
            out["gpu"] = self.gpu
        return out

    @property
    def max_t(self) -> int | None:
        return self.optuna.max_t

    @property
    def time_attr(self) -> str:
        return self.optuna.time_attr

    # -- builders (import Ray) ----------------------------------------------------------

    def build_searcher(self, seed: int | None = None) -> Any:
        from sweepspec.run.ray_driver import SpecSearch

        return SpecSearch(self, seed=self.seed if seed is None else seed)

    def build_scheduler(self) -> Any:
        from sweepspec.run.ray_driver import SPEC_SCHEDULERS

        kwargs = dict(self.scheduler_kwargs)
        if self.scheduler == "pbt":
            scheduler = SPEC_SCHEDULERS["pbt"](self, **kwargs)
        else:
            scheduler = SPEC_SCHEDULERS[self.scheduler](**kwargs)
        scheduler.snapshot_each_trial = self.snapshot_each_trial
        return scheduler

    def build_stopper(self) -> Any:
        from sweepspec.run.ray_driver import SpecStopper

        return SpecStopper(self)

    def build_mutations(self) -> dict[str, Any]:
        """PBT ``hyperparam_mutations``: Tune domains and lists."""
        from ray import tune

        out: dict[str, Any] = {}
        for path, (kind, *args) in self.mutations.items():
            if kind == "choice":
                out[path] = list(args[0])
            else:
                out[path] = getattr(tune, kind)(*args)
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


def _stop_rules(spec: Spec) -> list[tuple[str, str, float]]:
    from sweepspec.run.stops import TrialStopRule

    return TrialStopRule.from_spec(spec, None).thresholds


def compile_ray(spec: Spec) -> RayPlan:
    """The Ray plan for ``spec`` (pure: nothing is started or imported from Ray)."""
    optuna_plan = compile_optuna(spec, study_name=spec.run_name)
    directions = dict(spec.objective.directions)
    names = list(directions)
    metric: str | list[str] = names[0] if len(names) == 1 else names
    mode: str | list[str] = (
        directions[names[0]] if len(names) == 1 else [directions[n] for n in names]
    )
    scheduler, kwargs, mutations = _scheduler(spec, optuna_plan.space)
    per = spec.resources.per_trial
    conc = spec.resources.max_concurrent
    from sweepspec.space import flatten_config

    try_first = []
    for entry in spec.try_first:
        flat = flatten_config(entry)
        try_first.append({k: v for k, v in flat.items() if k in optuna_plan.suggest})
    return RayPlan(
        optuna=optuna_plan,
        metric=metric,
        mode=mode,
        num_samples=optuna_plan.total_trials,
        seed=spec.searcher.seed,
        try_first=try_first,
        scheduler=scheduler,
        scheduler_kwargs=kwargs,
        mutations=mutations,
        stop_trial=_stop_rules(spec),
        target=dict(spec.stop.sweep.target) if spec.stop.sweep.target else None,
        time_budget_s=spec.stop.sweep.time_budget,
        max_failed=spec.trials.max_failed,
        cpu=per.cpu,
        gpu=per.gpu,
        memory=per.memory,
        max_concurrent=None if conc == "auto" else int(conc),
        max_failures=spec.trials.max_retries,
        timeout_s=spec.trials.timeout,
        keep_checkpoints=4 if scheduler == "pbt" else 2,
        directions=directions,
        reuse_processes=spec.backend.reuse_processes,
        snapshot_each_trial=spec.backend.type == "ray"
        and str(spec.backend.address or "").startswith("ray://"),
    )


def _fmt(kwargs: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in kwargs.items())


def describe_ray(spec: Spec) -> list[str]:
    """What ``spec`` compiles to on Ray, for ``sweepspec plan`` (no Ray started)."""
    plan = compile_ray(spec)
    o = plan.optuna
    address = spec.backend.address if spec.backend.type == "ray" else None
    where = (
        "a local Ray sized to this machine"
        if address in (None, "local")
        else f"the Ray cluster at {address}"
    )
    sampler_args = "".join(f", {k}={v!r}" for k, v in o.sampler_kwargs.items())
    lines = [
        f"ray tune Tuner on {where}, experiment {EXPERIMENT_NAME!r} in <storage>/{spec.run_name}/",
        f"searcher OptunaSearch(define-by-run, sampler=optuna {o.sampler}(seed={plan.seed}"
        f"{sampler_args}), metric={plan.metric!r}, mode={plan.mode!r}"
        + (f", points_to_evaluate={len(plan.try_first)} try_first" if plan.try_first else "")
        + ")",
    ]
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
    stops = [f"{n} {op} {v:g}" for n, op, v in plan.stop_trial]
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
    return lines


def is_finite_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
