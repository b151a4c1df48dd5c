"""What the Ray backend cannot do, as validate-time errors. Light: imports nothing of Ray."""

from __future__ import annotations

from sweepspec.errors import Finding
from sweepspec.spec.root import Spec

__all__ = ["check"]


def check(spec: Spec) -> list[Finding]:
    found: list[Finding] = []
    if spec.storage_is_url:
        found.append(
            Finding(
                ("storage",),
                "a database URL is a storage for the optuna backend; the "
                "ray backend takes a directory",
                "storage",
            )
        )
    if getattr(spec.scheduler, "mode", "stop") == "promote":
        found.append(
            Finding(
                ("scheduler", "mode"),
                "promotion-based asha (mode: promote) needs the optuna backend: Ray Tune's "
                "ASHAScheduler only stops trials; use mode: stop, or backend: {type: optuna}",
                "backend",
            )
        )
    return found
