"""The Optuna backend (``backend: {type: optuna}``, the default): an embedded driver that owns
an Optuna study (a journal file in the run directory, or a database that several machines'
workers share) and runs each trial in a worker process forked from it. No daemons.

Light on purpose: Optuna and the runner load only when a run or a read needs them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sweepspec.backends.optuna_backend.checks import check
from sweepspec.errors import Finding
from sweepspec.run.ledger import Ledger
from sweepspec.run.rundir import RunDir
from sweepspec.run.session import ProgressSink, RunOptions, RunOutcome
from sweepspec.spec.read import LoadedSpec
from sweepspec.spec.root import Spec

__all__ = ["BACKEND"]


class _OptunaBackend:
    name = "optuna"

    def check(self, spec: Spec) -> list[Finding]:
        return check(spec)

    def describe(self, loaded: LoadedSpec) -> list[str]:
        from sweepspec.backends.optuna_backend.compile import compile_optuna, describe_optuna
        from sweepspec.backends.optuna_backend.session import concurrency_for

        try:
            workers, _ = concurrency_for(loaded.spec)
            here = f"{workers} worker process(es)"
        except Exception as exc:  # e.g. GPUs asked for but none here: plan still shows the rest
            here = f"cannot run here: {exc}"
        return describe_optuna(compile_optuna(loaded.spec), here)

    def run(
        self, loaded: LoadedSpec, options: RunOptions, progress: ProgressSink | None
    ) -> RunOutcome:
        from sweepspec.backends.optuna_backend.session import run_optuna

        return run_optuna(loaded, options, progress)

    def read_ledger(self, loaded: LoadedSpec, rundir: RunDir, meta: Mapping[str, Any]) -> Ledger:
        from sweepspec.backends.optuna_backend.compile import compile_optuna
        from sweepspec.backends.optuna_backend.storage import load_study
        from sweepspec.backends.optuna_backend.tally import tally
        from sweepspec.search.params import decode_params

        suggest = compile_optuna(loaded.spec).search.suggest
        study = load_study(loaded, rundir, str(meta.get("study_name") or loaded.spec.run_name))
        return tally(study.get_trials(deepcopy=False), lambda p: decode_params(suggest, p))

    def optuna_storage(self, loaded: LoadedSpec, rundir: RunDir) -> object | None:
        """The run's Optuna storage (its journal, repaired if a crash damaged it, or the
        spec's database), for ``sweepspec dashboard``."""
        from sweepspec.backends.optuna_backend.storage import open_storage

        return open_storage(loaded.spec, rundir)


BACKEND = _OptunaBackend()
