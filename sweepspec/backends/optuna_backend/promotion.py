"""Promotion-based ASHA (``scheduler: {type: asha, mode: promote}``): asynchronous successive
halving as its paper describes it (Li et al., "A System for Massively Parallel Hyperparameter
Tuning", MLSys 2020, algorithm 2), on the Optuna backend.

Rung k is at ``grace_period * reduction_factor**k`` steps (below ``max_t``). A trial that
reaches a rung goes on if it is in the top ``1/reduction_factor`` of the trials that reached
that rung so far; otherwise it *pauses*: its process saves the checkpoint of that report and
exits, and the Optuna trial is told PRUNED with the user attribute ``paused`` (the searcher
learns from it as from a pruned trial). Whenever a worker is free, the paused trial that has
since earned promotion (it is now in the top ``1/reduction_factor`` of its rung, as more
trials reached it), highest rung first, best value first, runs on from its checkpoint as a
new attempt of the same logical trial, before any new trial starts. A slow starter that
stopping-based ASHA would have killed for good is only set aside.

Everything is read from the study (every attempt's intermediate values and states), so that
several drivers on one study, and a run resumed after a crash, decide alike: no state of its
own to lose. Promotion happens under the launch gate, so no trial is promoted twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sweepspec.backends.optuna_backend.tally import PAUSED_ATTR

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

    from sweepspec.backends.optuna_backend.compile import OptunaPlan

__all__ = ["Paused", "RungTable"]


@dataclass(frozen=True)
class Paused:
    """A logical trial paused at a rung, as its paused attempt left it."""

    logical: str
    rung: int
    params: dict[str, object]
    attempt: int
    #: seconds its runs took so far: the paused attempt's ``duration_s``, which counts the
    #: runs before it (the runner adds a promoted attempt's ``prior_s``)
    ran_s: float


@dataclass
class RungTable:
    """The rungs as the study's trials stand: each logical trial's value at each rung it
    reached (the value reported at its first step at or past the rung), and the trials
    paused there."""

    steps: tuple[int, ...]
    reduction_factor: int
    maximize: bool
    #: per rung: logical id -> value
    values: list[dict[str, float]] = field(default_factory=list)
    #: logical id -> its paused attempt (only where its latest attempt is paused)
    paused: dict[str, Paused] = field(default_factory=dict)
    #: logical id -> (rung, Optuna trial number of the attempt that reported its first step
    #: at or past that rung, and that step)
    crossed: dict[tuple[str, int], tuple[int, int]] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        trials: Iterable[FrozenTrial],
        steps: tuple[int, ...],
        reduction_factor: int,
        maximize: bool,
    ) -> RungTable:
        table = cls(steps, reduction_factor, maximize, [{} for _ in steps])
        by_logical: dict[str, list[FrozenTrial]] = {}
        for t in sorted(trials, key=lambda t: t.number):
            attrs = t.user_attrs
            if attrs.get("warm") or attrs.get("rejected") or "logical" not in attrs:
                continue
            by_logical.setdefault(str(attrs["logical"]), []).append(t)
        for logical, attempts in by_logical.items():
            table._add(logical, attempts)
        return table

    @classmethod
    def of_plan(cls, trials: Iterable[FrozenTrial], plan: OptunaPlan) -> RungTable:
        """The rungs of ``plan`` (promotion-based ASHA) as ``trials`` stand."""
        assert plan.rungs is not None
        maximize = plan.search.directions[0] == "maximize"
        return cls.of(trials, plan.rungs, plan.reduction_factor, maximize)

    def _add(self, logical: str, attempts: Sequence[FrozenTrial]) -> None:
        reported: dict[int, tuple[float, int]] = {}  # step -> (value, trial number)
        for t in attempts:  # a later attempt's report of a step wins
            for step, value in t.intermediate_values.items():
                reported[int(step)] = (float(value), t.number)
        ordered = sorted(reported)
        for k, rung in enumerate(self.steps):
            first = next((s for s in ordered if s >= rung), None)
            if first is None:
                break
            value, number = reported[first]
            self.values[k][logical] = value
            self.crossed[(logical, k)] = (number, first)
        last = attempts[-1]
        if last.state.name == "PRUNED" and last.user_attrs.get(PAUSED_ATTR):
            rung = max((k for k in range(len(self.steps)) if logical in self.values[k]), default=-1)
            if rung >= 0:  # paused with no finite value at a rung: it can never be promoted
                self.paused[logical] = Paused(
                    logical, rung, dict(last.params), int(last.user_attrs.get("attempt", 0)),
                    float(last.user_attrs.get("duration_s") or 0.0),
                )  # fmt: skip

    def _top(self, k: int) -> list[str]:
        """The logical trials in the top 1/reduction_factor of rung k (best first)."""
        rung = self.values[k]
        quota = len(rung) // self.reduction_factor
        ranked = sorted(rung, key=lambda lid: rung[lid], reverse=self.maximize)
        return ranked[:quota]

    def crossing(self, logical: str, number: int, step: int) -> int | None:
        """The rung that this report (of Optuna trial ``number`` at ``step``) is the logical
        trial's first to reach, if any (the highest when it reached several at once)."""
        for k in reversed(range(len(self.steps))):
            if self.crossed.get((logical, k)) == (number, step):
                return k
        return None

    def goes_on(self, logical: str, k: int) -> bool:
        """Whether a trial that just reached rung k is in its top 1/reduction_factor."""
        return logical in self._top(k)

    def promotable(self) -> Paused | None:
        """The paused trial to promote now: the highest rung first, the best value first."""
        for k in reversed(range(len(self.steps))):
            for logical in self._top(k):
                paused = self.paused.get(logical)
                if paused is not None and paused.rung == k:
                    return paused
        return None
