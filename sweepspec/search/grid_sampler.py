"""``searcher: grid``: Optuna's grid sampler, minus its ``study.stop()``. Imports Optuna: load it
only where a sampler is built (``samplers.build_sampler``). A module-level class, so that Ray can
pickle the searcher that holds it."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.study import Study
from optuna.trial import FrozenTrial, TrialState

__all__ = ["GridSampler"]


class GridSampler(optuna.samplers.GridSampler):
    """Optuna's grid sampler calls ``study.stop()`` when the grid is used up, which only works
    inside ``optimize``; sweepspec counts trials itself (the trial count is at most the grid's
    size), so nothing needs stopping here."""

    def after_trial(
        self,
        study: Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        return None
