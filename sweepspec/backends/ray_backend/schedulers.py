"""The Ray backend's schedulers: Ray's own, with an experiment snapshot after every step in
which a trial saved a checkpoint (:class:`SnapshotOnCheckpoint`), and PBT whose mutations stay
inside the space (:class:`SpecPBT`). Driver side only: imports Ray Tune."""

from __future__ import annotations

import copy
import warnings
from typing import Any

from ray import tune
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
    TrialScheduler,
)
from ray.tune.schedulers.pbt import _explore

from sweepspec.backends.ray_backend.compile import RayPlan
from sweepspec.backends.ray_backend.trainable import CHECKPOINT_KEY
from sweepspec.search.params import active_values

__all__ = [
    "SPEC_SCHEDULERS",
    "SnapshotOnCheckpoint",
    "SpecPBT",
    "build_scheduler",
    "force_snapshot",
]


class _NoSearchAlg:
    """A view of the TuneController without its search algorithm: Ray's PBT refuses any
    searcher, but ours only picks the initial population (mutations stay PBT's)."""

    search_alg = None

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


def force_snapshot(tune_controller: Any) -> bool:
    """Make Ray save the experiment state at the end of this step (its own "forced sync",
    which it also uses after a trial's ``num_to_keep`` checkpoints). False when this Ray's
    internals differ (a test pins that they do not)."""
    controller = getattr(tune_controller, "_tune_controller", tune_controller)
    manager = getattr(controller, "_checkpoint_manager", None)
    if manager is None or not hasattr(manager, "_should_force_sync_up"):
        return False
    manager._should_force_sync_up = True
    return True


class SnapshotOnCheckpoint:
    """A scheduler mixin: the experiment state is saved at the end of every step in which a
    trial saved a checkpoint, and otherwise on Ray's own period. Ray deletes a trial's older
    checkpoints (it keeps ``num_to_keep``), so the last snapshot must name each trial's newest
    one: a restore from a deleted checkpoint fails the trial.

    Trials added or ended since the last snapshot need no snapshot: on resume,
    :func:`sweepspec.backends.ray_backend.session.reconcile` keeps the ones that ended
    (``ledger.jsonl`` has them) and starts the others over (a snapshot after every added trial
    cost about 5 ms a trial here). Under Ray Client a resume cannot do that
    (``snapshot_each_trial``).
    """

    #: also snapshot after every step that adds a trial, so that every trial that can end is
    #: in the last snapshot (RayPlan.snapshot_each_trial)
    snapshot_each_trial = False

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if self.snapshot_each_trial:
            force_snapshot(tune_controller)
        super().on_trial_add(tune_controller, trial)  # type: ignore[misc]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get(CHECKPOINT_KEY):
            force_snapshot(tune_controller)
        decision: str = super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]
        return decision


class SpecFIFO(SnapshotOnCheckpoint, FIFOScheduler):
    """FIFOScheduler with :class:`SnapshotOnCheckpoint`."""


class SpecASHA(SnapshotOnCheckpoint, ASHAScheduler):
    """ASHAScheduler with :class:`SnapshotOnCheckpoint`."""


class SpecHyperBand(SnapshotOnCheckpoint, HyperBandScheduler):
    """HyperBandScheduler with :class:`SnapshotOnCheckpoint`."""


class SpecMedian(SnapshotOnCheckpoint, MedianStoppingRule):
    """MedianStoppingRule with :class:`SnapshotOnCheckpoint`."""


class SpecPBT(SnapshotOnCheckpoint, PopulationBasedTraining):
    """PBT whose mutations stay inside the space: values are clipped to their bounds (and
    steps), only parameters present in the donor's config mutate, and a perturbed config
    that breaks a constraint is drawn again (after 100 tries, the donor's config is kept)."""

    def __init__(self, plan: RayPlan, **kwargs: Any) -> None:
        self._spec_plan = plan
        super().__init__(hyperparam_mutations=build_mutations(plan), **kwargs)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # num_to_keep advice: ours keeps 4
            controller: Any = _NoSearchAlg(tune_controller)
            super().on_trial_add(controller, trial)

    def _get_new_config(self, trial: Any, trial_to_clone: Any) -> tuple[dict[str, Any], Any]:
        clone = trial_to_clone.config
        mutations = {k: v for k, v in self._hyperparam_mutations.items() if k in clone}
        space = self._spec_plan.space
        for _ in range(100):
            factors: Any = self._perturbation_factors
            new, ops = _explore(
                clone, mutations, self._resample_probability, factors, self._custom_explore_fn
            )
            self._clip(new)
            values = active_values(space, new)
            if not space.violated({**space.fixed_values(values), **values}):
                return new, ops
        return copy.deepcopy(clone), {}

    def _clip(self, config: dict[str, Any]) -> None:
        for path, s in self._spec_plan.search.suggest.items():
            if path not in config or s.method == "categorical":
                continue
            low, high = s.kwargs["low"], s.kwargs["high"]
            v = min(high, max(low, config[path]))
            step = s.kwargs.get("step")
            if step:
                v = min(high, low + round((v - low) / step) * step)
            config[path] = round(v) if s.method == "int" else float(v)


#: Scheduler type (the spec's) -> the class that runs it.
SPEC_SCHEDULERS: dict[str, type] = {
    "fifo": SpecFIFO,
    "asha": SpecASHA,
    "hyperband": SpecHyperBand,
    "median": SpecMedian,
    "pbt": SpecPBT,
}


def build_scheduler(plan: RayPlan) -> TrialScheduler:
    """The plan's scheduler, ready for ``TuneConfig(scheduler=...)``."""
    kwargs = dict(plan.scheduler_kwargs)
    scheduler: Any
    if plan.scheduler == "pbt":
        scheduler = SpecPBT(plan, **kwargs)
    else:
        scheduler = SPEC_SCHEDULERS[plan.scheduler](**kwargs)
    scheduler.snapshot_each_trial = plan.snapshot_each_trial
    built: TrialScheduler = scheduler
    return built


def build_mutations(plan: RayPlan) -> dict[str, Any]:
    """PBT ``hyperparam_mutations``: Tune domains and lists."""
    out: dict[str, Any] = {}
    for path, (kind, *args) in plan.mutations.items():
        out[path] = list(args[0]) if kind == "choice" else getattr(tune, kind)(*args)
    return out
