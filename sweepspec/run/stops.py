"""Per-trial stop rules (``stop.trial``, the scheduler's ``max_t``) and the answer to each
``trial.report``: continue, prune (the pruner says so) or stop (a rule is reached)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from sweepspec.spec.root import Spec

__all__ = ["TrialStopRule", "answers_needed", "decide_report", "progress_step"]


@dataclass
class TrialStopRule:
    """Thresholds on reported values: (name, op, value)."""

    thresholds: list[tuple[str, str, float]]
    max_t: int | None
    time_attr: str
    last_step: dict[int, int] = field(default_factory=dict)

    @classmethod
    def from_spec(cls, spec: Spec, max_t: int | None) -> TrialStopRule:
        directions = spec.objective.directions
        rules: list[tuple[str, str, float]] = []
        for name, threshold in spec.stop.trial.items():
            if isinstance(threshold, dict):
                ((op, value),) = threshold.items()
            else:
                op = "<=" if directions.get(name) == "min" else ">="
                value = threshold
            rules.append((name, op, float(value)))
        return cls(rules, max_t, spec.scheduler.time_attr)

    def reached(self, values: dict[str, Any]) -> bool:
        for name, op, limit in self.thresholds:
            v = values.get(name)
            if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v):
                continue
            if (
                (op == ">=" and v >= limit)
                or (op == "<=" and v <= limit)
                or (op == ">" and v > limit)
                or (op == "<" and v < limit)
            ):
                return True
        return False


def progress_step(time_attr: str, iterations: int, elapsed: float, metrics: dict[str, Any]) -> int:
    """The trial's progress in ``time_attr`` units (an int, as pruners count steps)."""
    if time_attr == "training_iteration":
        return iterations
    if time_attr == "time_total_s":
        return int(elapsed)
    value = metrics.get(time_attr)
    return int(value) if isinstance(value, int | float) and math.isfinite(value) else iterations


def answers_needed(plan: Any, rule: TrialStopRule) -> bool:
    """Whether any report can be answered otherwise than ``continue``: a pruner that sees the
    metric, a ``stop.trial`` threshold or a ``max_t``. If not, trials report without waiting
    for an answer (a round trip to the driver an epoch, saved)."""
    pruning = plan.pruner != "NopPruner" and len(plan.metric_names) == 1
    return pruning or bool(rule.thresholds) or rule.max_t is not None


def decide_report(
    plan: Any,
    rule: TrialStopRule,
    trial: Any,
    iterations: int,
    elapsed: float,
    metrics: dict[str, Any],
    new: dict[str, Any],
) -> str:
    """Tell the pruner about a report and answer ``continue``, ``prune`` or ``stop``."""
    step = progress_step(rule.time_attr, iterations, elapsed, metrics)
    values = {**metrics, "training_iteration": iterations, "time_total_s": elapsed}
    if rule.reached(values):
        return "stop"
    if rule.max_t is not None and step >= rule.max_t:
        return "stop"
    if plan.pruner == "NopPruner" or len(plan.metric_names) != 1:
        return "continue"
    value = new.get(plan.metric_names[0])
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or step <= rule.last_step.get(trial.number, -1)
    ):
        return "continue"  # NaN or a repeated step is never shown to the pruner
    rule.last_step[trial.number] = step
    trial.report(float(value), step)
    return "prune" if trial.should_prune() else "continue"
