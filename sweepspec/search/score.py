"""``objective.score``: one value computed from several metrics, the value every backend's
searcher, scheduler, stops and best trial go by. Pure: an expression of the spec language
(:mod:`sweepspec.spec.expr`) over the metrics a trial reports.

- **A report**: its score is computed from that report's own values only (never mixed with an
  earlier report's: such a value would be the score of no step). A report that lacks a metric
  the score needs, or holds one that is not a finite number, or whose score is not, has no
  score: the scheduler does not see it (the trial goes on).
- **A finished trial**: its score is computed from its final values (the last reported values
  updated by what it returned), and recorded beside the metrics as :data:`SCORE`. A missing
  metric, a NaN/inf metric or score, or a score that cannot be computed (a division by zero)
  fails the trial, as a missing or NaN metric does.
- **The name**: :data:`SCORE` is reserved: an objective that reports a value named ``score``
  itself has that report kept from the scheduler, and the trial fails (``reserved_metric``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweepspec.records import RETURN_KEY, is_finite_number, shown
from sweepspec.spec.expr import Expr, ExprEvalError, parse_expr
from sweepspec.spec.objective import SCORE
from sweepspec.spec.root import Spec
from sweepspec.suggest import did_you_mean

__all__ = ["SCORE", "Score", "score_of"]


@dataclass(frozen=True)
class Score:
    """A spec's ``objective.score``: the expression and the metrics it is computed from."""

    expr: Expr
    #: ``objective.metrics``: every one of them is required of a finished trial
    metrics: tuple[str, ...]

    @property
    def text(self) -> str:
        return self.expr.source

    def of(self, values: Mapping[str, Any]) -> float | None:
        """The score of one report, or None when it has none (see the module docstring)."""
        if SCORE in values:
            return None
        env: dict[str, Any] = {}
        for name in self.expr.names():
            value = values.get(name)
            if not is_finite_number(value):
                return None
            env[name] = value
        try:
            result = self.expr.evaluate(env)
        except ExprEvalError:
            return None
        return float(result) if is_finite_number(result) else None

    def fill(self, metrics: dict[str, Any]) -> str | None:
        """Set a finished trial's score in ``metrics`` (its final values), or say why the trial
        fails: ``reserved_metric``, ``missing_metric`` or ``nan_metric``."""
        if SCORE in metrics:
            return (
                f"reserved_metric: the trial reported {SCORE!r} itself, the name "
                "objective.score's value is recorded under; rename that metric"
            )
        metrics.pop(RETURN_KEY, None)  # a bare returned number is no metric of a score
        env: dict[str, Any] = {}
        for name in self.metrics:
            value = metrics.get(name)
            if value is None:
                hint = did_you_mean(name, metrics)
                return f"missing_metric: the trial did not report {name!r}{hint}"
            if not is_finite_number(value):
                return f"nan_metric: {name} = {shown(value)} is not a finite number"
            env[name] = value
        try:
            result = self.expr.evaluate(env)
        except ExprEvalError as exc:
            return f"nan_metric: the score {self.text!r} cannot be computed: {exc.message}"
        if not is_finite_number(result):
            return f"nan_metric: {SCORE} = {shown(result)} is not a finite number"
        metrics[SCORE] = float(result)
        return None


def score_of(spec: Spec) -> Score | None:
    """``spec``'s score, if it has one (checked at validate time: it parses, and names only
    the listed metrics)."""
    objective = spec.objective
    if objective.score is None:
        return None
    return Score(parse_expr(objective.score), tuple(objective.score_metrics))
