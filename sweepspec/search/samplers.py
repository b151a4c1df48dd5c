"""Build the Optuna sampler a search plan names (both backends search with one). Imports
Optuna, so only at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING

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
        from sweepspec.search.grid_sampler import GridSampler

        return GridSampler(kwargs["search_space"], seed=seed)
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
