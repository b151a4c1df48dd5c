"""What an early-stopping scheduler is expected to save, and the compute budget of a spec:
pure functions of the Spec (``sweepspec plan`` shows them; nothing runs).

The saving of ASHA and HyperBand is rung arithmetic: at every rung ``1/reduction_factor``
of the trials that reached it go on, so a trial's expected length is the sum over rungs of
the share that gets there times the rung's length, against ``max_t`` for every trial under
FIFO. It is what the scheduler does when results rank trials at random; real results only
decide *which* trials go on, not how many."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from sweepspec.search.plan import trial_count
from sweepspec.spec.root import Spec
from sweepspec.spec.scheduler import AshaScheduler, HyperbandScheduler

__all__ = ["Saving", "budget", "scheduler_saving"]


@dataclass(frozen=True)
class Saving:
    """A trial's expected length under an early-stopping scheduler, against FIFO."""

    scheduler: str
    time_attr: str
    max_t: int
    expected_t: float  # per trial, in time_attr units
    rungs: tuple[float, ...]  # where trials may be stopped (of the first bracket)

    @property
    def factor(self) -> float:
        """How many times less work than FIFO (``max_t`` for every trial)."""
        return self.max_t / self.expected_t if self.expected_t > 0 else 1.0


def _halving(start: float, max_t: int, rf: float) -> tuple[float, tuple[float, ...]]:
    """(expected length, rungs) of a trial in successive halving that starts its rungs at
    ``start``: it runs to the first rung, and past rung k with probability rf**-(k+1)."""
    rungs: list[float] = []
    r = float(start)
    while r < max_t and len(rungs) < 64:
        rungs.append(r)
        r *= rf
    if not rungs:
        return float(max_t), ()
    ends = [*rungs[1:], float(max_t)]
    expected = rungs[0] + sum(rf ** -(k + 1) * (end - rungs[k]) for k, end in enumerate(ends))
    return expected, tuple(rungs)


def _hyperband(max_t: int, rf: float) -> tuple[float, tuple[float, ...]]:
    """HyperBand's (expected length, rungs of its most aggressive bracket) over one full
    round of brackets (Li et al.: bracket s starts n = ceil((s_max+1)/(s+1) * rf**s) trials
    at max_t * rf**-s; each rung keeps 1/rf of them, and kept trials go on training)."""
    s_max = max(0, math.floor(math.log(max_t) / math.log(rf) + 1e-9))
    work = trials = 0.0
    first: tuple[float, ...] = ()
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * rf**s)
        r0 = max_t * rf**-s
        done, reached = 0.0, float(n)
        rungs = []
        for i in range(s + 1):
            r = min(float(max_t), r0 * rf**i)
            work += reached * (r - done)
            rungs.append(r)
            done, reached = r, max(1.0, math.floor(n * rf ** -(i + 1)))
        trials += n
        if not first:
            first = tuple(rungs[:-1])
    return work / trials, first


def scheduler_saving(spec: Spec) -> Saving | None:
    """The expected saving of the spec's ASHA or HyperBand scheduler; None for the others
    (FIFO saves nothing, the median rule's saving depends on the results, PBT runs every
    trial to its end)."""
    sched = spec.scheduler
    if isinstance(sched, AshaScheduler):
        rf = sched.reduction_factor  # bracket b starts its rungs at grace_period * rf**b
        runs = [
            _halving(sched.grace_period * rf**b, sched.max_t, rf) for b in range(sched.brackets)
        ]
        expected = sum(e for e, _ in runs) / len(runs)
        return Saving("asha", sched.time_attr, sched.max_t, expected, runs[0][1])
    if isinstance(sched, HyperbandScheduler):
        expected, rungs = _hyperband(sched.max_t, sched.reduction_factor)
        return Saving("hyperband", sched.time_attr, sched.max_t, expected, rungs)
    return None


def budget(spec: Spec, saving: Saving | None) -> dict[str, Any]:
    """Trials, resources, worst-case trial-hours and GPU-hours (every trial runs to its
    timeout), and the expected ones under the scheduler (a trial's time taken as growing
    with its steps)."""
    total = trial_count(spec)
    per = spec.resources.per_trial
    timeout = spec.trials.timeout
    worst = total * timeout / 3600 if timeout else None
    share = 1 / saving.factor if saving is not None else None
    return {
        "trials": total,
        "cpu_per_trial": per.cpu,
        "gpu_per_trial": per.gpu,
        "timeout_s": timeout,
        "trial_hours_max": worst,
        "gpu_hours_max": worst * per.gpu if worst is not None else None,
        "trial_hours_expected": worst * share if worst is not None and share else None,
        "gpu_hours_expected": worst * share * per.gpu if worst is not None and share else None,
        "time_budget_s": spec.stop.sweep.time_budget,
    }
