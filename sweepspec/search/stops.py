"""``stop.trial``: thresholds on reported values that end a trial as finished (COMPLETE), the
same on every backend. Pure: parsed from the spec, evaluated on a trial's values."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweepspec.records import is_finite_number
from sweepspec.spec.root import Spec

__all__ = ["StopRule", "stop_rule", "target_reached"]


@dataclass(frozen=True)
class StopRule:
    """Thresholds on reported values: (name, op, value), op one of ``>= <= > <``."""

    thresholds: tuple[tuple[str, str, float], ...]

    def reached(self, values: Mapping[str, Any]) -> bool:
        """Whether any threshold is reached by ``values`` (a NaN or a missing value never
        reaches one)."""
        for name, op, limit in self.thresholds:
            v = values.get(name)
            if not is_finite_number(v):
                continue
            if (
                (op == ">=" and v >= limit)
                or (op == "<=" and v <= limit)
                or (op == ">" and v > limit)
                or (op == "<" and v < limit)
            ):
                return True
        return False


def stop_rule(spec: Spec) -> StopRule:
    """``stop.trial`` of ``spec``: a bare number is reached at ``>=``, or ``<=`` for a metric
    that is minimised."""
    directions = spec.objective.directions
    rules: list[tuple[str, str, float]] = []
    for name, threshold in spec.stop.trial.items():
        if isinstance(threshold, dict):
            ((op, value),) = threshold.items()
        else:
            op = "<=" if directions.get(name) == "min" else ">="
            value = threshold
        rules.append((name, op, float(value)))
    return StopRule(tuple(rules))


def target_reached(
    metrics: Mapping[str, Any], target: Mapping[str, float], directions: Mapping[str, str]
) -> bool:
    """``stop.sweep.target``: whether a finished trial's ``metrics`` reach every target value
    (at or above it for a maximised metric, at or below it otherwise)."""
    for name, value in target.items():
        v = metrics.get(name)
        if not is_finite_number(v):
            return False
        if (v < value) if directions.get(name, "max") == "max" else (v > value):
            return False
    return True
