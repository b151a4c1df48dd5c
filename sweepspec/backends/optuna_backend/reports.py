"""The answer to each ``trial.report`` on the Optuna backend: continue, prune (the pruner says
so), stop (a ``stop.trial`` threshold or the scheduler's ``max_t`` is reached) or pause
(promotion-based ASHA: the trial reached a rung outside its top, :mod:`.promotion`). With
``objective.score`` the pruner sees each report's score (:mod:`sweepspec.search.score`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from sweepspec.backends.optuna_backend.compile import OptunaPlan
from sweepspec.backends.optuna_backend.promotion import RungTable
from sweepspec.records import is_finite_number
from sweepspec.search.score import SCORE

if TYPE_CHECKING:
    import optuna

__all__ = ["Answer", "Reports", "progress_step"]

Answer = Literal["continue", "prune", "stop", "pause"]


def progress_step(
    time_attr: str, iterations: int, elapsed: float, metrics: Mapping[str, Any]
) -> int:
    """The trial's progress in ``time_attr`` units (an int, as pruners count steps)."""
    if time_attr == "training_iteration":
        return iterations
    if time_attr == "time_total_s":
        return int(elapsed)
    value = metrics.get(time_attr)
    return int(value) if is_finite_number(value) else iterations


@dataclass
class Reports:
    """Decides each report's answer and tells the pruner (once a step: a repeated step is
    not shown to it again)."""

    plan: OptunaPlan
    last_step: dict[int, int] = field(default_factory=dict)

    @property
    def answers_needed(self) -> bool:
        """Whether any report can be answered otherwise than ``continue``: a pruner that sees
        the metric, a ``stop.trial`` threshold or a ``max_t``. If not, trials report without
        waiting for an answer (a round trip to the driver an epoch, saved)."""
        return self.plan.pruning or bool(self.plan.stop.thresholds) or self.plan.max_t is not None

    def decide(
        self,
        trial: optuna.Trial,
        iterations: int,
        elapsed: float,
        metrics: Mapping[str, Any],
        new: Mapping[str, Any],
        logical: str = "",
    ) -> Answer:
        """Tell the pruner about a report (``new``: what it holds; ``metrics``: the trial's
        values so far; ``logical``: the trial's logical id) and answer it."""
        plan = self.plan
        step = progress_step(plan.time_attr, iterations, elapsed, metrics)
        score = plan.search.score
        if score is not None:  # what the pruner and stop.trial see is the report's own score
            value = score.of(new)  # none: the report lacks a metric of it (or names 'score')
            new = {SCORE: value} if value is not None else {}
            metrics = {**{k: v for k, v in metrics.items() if k != SCORE}, **new}
        values = {**metrics, "training_iteration": iterations, "time_total_s": elapsed}
        if plan.stop.reached(values):
            return "stop"
        if plan.max_t is not None and step >= plan.max_t:
            return "stop"
        if not plan.pruning:
            return "continue"
        value = new.get(plan.search.metric_names[0])
        last = self.last_step.get(trial.number, -1)
        if not is_finite_number(value) or step <= last:
            return "continue"  # NaN or a repeated step is never shown to the pruner
        self.last_step[trial.number] = step
        trial.report(float(value), step)
        if plan.rungs is not None:
            return self._at_rung(trial, logical, last, step, plan.rungs)
        return "prune" if trial.should_prune() else "continue"

    def _at_rung(
        self, trial: optuna.Trial, logical: str, last: int, step: int, rungs: tuple[int, ...]
    ) -> Answer:
        """Promotion-based ASHA: go on, or pause at the rung this report reached first."""
        if last >= 0 and not any(last < r <= step for r in rungs):
            return "continue"  # no rung between this attempt's last report and this one
        table = RungTable.of_plan(trial.study.get_trials(deepcopy=False), self.plan)
        k = table.crossing(logical, trial.number, step)
        if k is None or table.goes_on(logical, k):
            return "continue"
        return "pause"
