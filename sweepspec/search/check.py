"""Check a searcher with its library before any trial runs (``run`` and ``plan`` do; validate
stays light and checks the options' values itself: ``spec.searcher.SEARCHER_OPTIONS``)."""

from __future__ import annotations

import warnings

from sweepspec.errors import SweepspecError
from sweepspec.search.asker import FeasibleAsker
from sweepspec.search.plan import SearchPlan
from sweepspec.search.samplers import build_sampler

__all__ = ["CHECK_TRIALS", "check_sampler"]


#: How many trials :func:`check_sampler` asks of a sampler at most (past its start-up phase).
CHECK_TRIALS = 60


def check_sampler(plan: SearchPlan) -> None:
    """See :func:`_check`; the library's warnings on made-up values are not the spec's fault."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _check(plan)


def _check(plan: SearchPlan) -> None:
    """Build the plan's sampler and let it propose configs on a throwaway in-memory study,
    past its start-up phase (where options such as CMA-ES's ``popsize`` are first used), before
    any trial runs: what the sampler refuses is reported now, not after a trial has finished.
    Told made-up values; nothing runs. GP samplers (slow to fit) are only built."""
    import optuna

    sampler = build_sampler(plan, plan.seed)
    if plan.sampler == "GPSampler":
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=plan.directions, sampler=sampler)
    asker = FeasibleAsker(plan, study)
    startup = max(
        (v for k, v in plan.sampler_kwargs.items() if k.startswith("n_startup")),
        default=10,
    )
    population = int(plan.sampler_kwargs.get("population_size") or 0)
    n = min(CHECK_TRIALS, max(int(startup) if isinstance(startup, int) else 10, population) + 3)
    for i in range(n):
        try:
            asked = asker.ask()
        except SweepspecError as exc:
            if exc.problems[0].code == "infeasible":  # tight constraints: not the sampler's fault
                return
            raise
        values = [((i * 7919) % 97) / 97.0 for _ in plan.directions]
        study.tell(asked.trial, values)
