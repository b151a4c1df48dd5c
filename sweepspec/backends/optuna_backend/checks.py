"""What the Optuna backend cannot do, as validate-time errors (never a silent approximation).
Light: imports nothing of Optuna."""

from __future__ import annotations

from sweepspec.errors import Finding
from sweepspec.spec.root import Spec

__all__ = ["check"]


def check(spec: Spec) -> list[Finding]:
    found: list[Finding] = []
    sched = spec.scheduler
    if sched.type == "pbt":
        found.append(
            Finding(
                ("scheduler", "type"),
                "pbt needs the ray backend (backend: {type: ray}): it moves checkpoints "
                "between running trials, which Optuna's pruners cannot do",
                "backend",
            )
        )
    if sched.type in ("fifo", "pbt"):
        return found
    if getattr(sched, "brackets", 1) != 1:
        found.append(
            Finding(
                ("scheduler", "brackets"),
                "the optuna backend runs asha with one bracket (SuccessiveHalvingPruner); "
                "use brackets: 1, scheduler hyperband, or the ray backend",
                "backend",
            )
        )
    for key in ("reduction_factor", "grace_period"):
        value = getattr(sched, key, None)
        if isinstance(value, float) and value != int(value):
            found.append(
                Finding(
                    ("scheduler", key),
                    f"the optuna backend's pruners count whole steps: {key} must be a whole "
                    f"number, but got {value}",
                    "backend",
                )
            )
    return found
