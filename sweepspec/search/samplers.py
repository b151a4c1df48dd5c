"""Build the Optuna sampler a search plan names (both backends search with one). Imports
Optuna, so only at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sweepspec.errors import Problem, SweepspecError
from sweepspec.search.plan import SearchPlan

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

__all__ = ["build_sampler"]


def build_sampler(plan: SearchPlan, seed: int | None) -> BaseSampler:
    """The plan's sampler with ``seed`` (callers derive it from the spec's: see the backends)."""
    import optuna

    kwargs = dict(plan.sampler_kwargs)
    if plan.sampler == "GridSampler":
        grid: BaseSampler = _grid_sampler_class()(kwargs["search_space"], seed=seed)
        return grid
    if plan.sampler == "HyperoptSampler":
        from sweepspec.search.hyperopt_sampler import HyperoptSampler

        return HyperoptSampler(seed=seed, **kwargs)
    cls = getattr(optuna.samplers, plan.sampler)
    try:
        sampler: BaseSampler = cls(seed=seed, **kwargs)
    except ImportError as exc:  # e.g. cmaes for CmaEsSampler, torch/scipy for GPSampler
        raise SweepspecError(
            Problem(
                f"searcher needs a package that is not installed: {exc}; install sweepspec[optuna]",
                "searcher.type",
                code="missing-package",
            )
        ) from None
    return sampler


def _grid_sampler_class() -> Any:
    import optuna

    class GridSampler(optuna.samplers.GridSampler):
        """Optuna's grid sampler calls ``study.stop()`` when the grid is used up, which only
        works inside ``optimize``; sweepspec counts trials itself (the trial count is at most
        the grid's size), so nothing needs stopping here."""

        def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
            return None

    return GridSampler
