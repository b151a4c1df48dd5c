"""Build the Optuna sampler a search plan names (both backends search with one). Imports
Optuna, so only at run time."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sweepspec.errors import Problem, SweepspecError
from sweepspec.search.plan import SearchPlan

if TYPE_CHECKING:
    from optuna.samplers import BaseSampler

__all__ = ["build_sampler", "searcher_error"]


def searcher_error(plan: SearchPlan, exc: BaseException) -> SweepspecError:
    """The library's own message for a sampler that refused the spec's options, located at the
    option it names (or at ``searcher``)."""
    text = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
    named = [k for k in plan.sampler_kwargs if k in text and k != "search_space"]
    path = f"searcher.options.{named[0]}" if named else "searcher"
    return SweepspecError(
        Problem(
            f"the searcher's sampler ({plan.sampler}) refused it: {type(exc).__name__}: {text}",
            path,
            code="searcher",
        )
    )


def build_sampler(plan: SearchPlan, seed: int | None) -> BaseSampler:
    """The plan's sampler with ``seed`` (callers derive it from the spec's: see the backends);
    a sampler that refuses its options is a :class:`SweepspecError` with its own message."""
    try:
        return _build(plan, seed)
    except SweepspecError:
        raise
    except Exception as exc:  # the library checks its options in its own way
        raise searcher_error(plan, exc) from None


def _build(plan: SearchPlan, seed: int | None) -> BaseSampler:
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
