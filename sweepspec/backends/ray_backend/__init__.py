"""The Ray backend (``backend: {type: ray}``): Ray Tune on this machine or a Ray cluster, for
PBT, GPU packing across machines and schedulers that pause and resume trials.

Light on purpose: this ``__init__`` sets Ray's environment defaults (before any module of the
package imports Ray) and imports nothing heavy; Ray loads when a run or a describe needs it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweepspec.backends.ray_backend.checks import check
from sweepspec.backends.ray_backend.env import set_ray_env
from sweepspec.errors import Finding
from sweepspec.run.ledger import Ledger
from sweepspec.run.rundir import RunDir
from sweepspec.run.session import ProgressSink, RunOptions, RunOutcome
from sweepspec.spec.read import LoadedSpec
from sweepspec.spec.root import Spec

__all__ = ["BACKEND"]

set_ray_env()


class _RayBackend:
    name = "ray"

    def check(self, spec: Spec) -> list[Finding]:
        return check(spec)

    def describe(self, loaded: LoadedSpec) -> list[str]:
        from sweepspec.backends.ray_backend.compile import describe_ray
        from sweepspec.run.rundir import EXPERIMENT_NAME

        return describe_ray(loaded.spec, EXPERIMENT_NAME)

    def run(
        self, loaded: LoadedSpec, options: RunOptions, progress: ProgressSink | None
    ) -> RunOutcome:
        from sweepspec.backends.ray_backend.session import run_ray

        return run_ray(loaded, options, progress)

    def read_ledger(self, loaded: LoadedSpec, rundir: RunDir, meta: Mapping[str, Any]) -> Ledger:
        from sweepspec.backends.ray_backend.ledger_file import LedgerFile

        return LedgerFile(rundir.ledger_file).ledger()

    def optuna_storage(self, loaded: LoadedSpec, rundir: RunDir) -> object | None:
        return None  # Ray keeps its trials in its own experiment state


BACKEND = _RayBackend()
