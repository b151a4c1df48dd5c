"""How a Ray trial's stop is read, and the stopper: ``stop.trial`` thresholds (any comparison,
not only Ray's ``>=``) and the whole-sweep stops ``stop.sweep.target`` and
``trials.max_failed`` (told by the driver's callback)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ray.tune.stopper import Stopper

from sweepspec.backends.ray_backend.compile import RayPlan
from sweepspec.backends.ray_backend.trainable import FAILED_KEY, ITERATIONS_KEY
from sweepspec.records import is_finite_number
from sweepspec.search.stops import target_reached

__all__ = ["SpecStopper", "rule_values", "stopped_state"]


def rule_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """``training_iteration`` counts the objective's reports (not our final extra report)."""
    values = dict(result)
    if ITERATIONS_KEY in result:
        values["training_iteration"] = result[ITERATIONS_KEY]
    return values


def _full_length(plan: RayPlan, result: Mapping[str, Any]) -> bool:
    step = result.get(plan.time_attr)
    return plan.max_t is not None and is_finite_number(step) and step >= plan.max_t


def stopped_state(plan: RayPlan, result: Mapping[str, Any]) -> str:
    """A trial that Ray stopped at ``result``: COMPLETE when a ``stop.trial`` rule or the
    scheduler's ``max_t`` was reached (it ran its full length), else PRUNED."""
    if plan.stop.reached(rule_values(result)) or _full_length(plan, result):
        return "COMPLETE"
    return "PRUNED"


class SpecStopper(Stopper):
    """``stop.trial`` ends a trial. ``stop.sweep.target`` and ``trials.max_failed`` set
    :attr:`reason`, upon which the driver's callback launches no more trials (the running ones
    run to their end, as on the Optuna backend; Ray's ``stop_all`` would cut them off)."""

    def __init__(self, plan: RayPlan) -> None:
        self.plan = plan
        self.failed = 0
        self.reason: str | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if FAILED_KEY in result:
            return True  # the trial failed for good: end it before the scheduler sees it
        hit = self.plan.stop.reached(rule_values(result))
        full = hit or bool(result.get("done")) or _full_length(self.plan, result)
        target = self.plan.target
        if (
            target
            and full
            and self.reason is None
            and target_reached(result, target, self.plan.directions)
        ):
            self.reason = "target"
        return hit

    def stop_all(self) -> bool:
        return False  # a whole-sweep stop launches no more trials: see the class docstring

    def note_failure(self) -> None:
        self.failed += 1
        max_failed = self.plan.max_failed
        if max_failed is not None and self.failed >= max_failed and not self.reason:
            self.reason = f"max_failed: {self.failed} trials failed"
