"""Read a run without changing it (for ``status`` and ``results``)."""

from __future__ import annotations

from typing import Any

from sweepspec.errors import Problem, SweepspecError
from sweepspec.load import LoadedSpec
from sweepspec.run.ledger import Ledger, tally
from sweepspec.run.rundir import RunDir

__all__ = ["read_run"]


def read_run(loaded: LoadedSpec) -> tuple[RunDir, Ledger, dict[str, Any]]:
    """(run directory, ledger, meta) of the spec's run; an error if it never ran."""
    rundir = RunDir.for_spec(loaded)
    if not rundir.exists():
        raise SweepspecError(
            Problem(
                f"no run of {loaded.spec.run_name!r} yet (looked in "
                f"{rundir.path}); start it with `sweepspec run`",
                code="no-run",
            )
        )
    meta = rundir.read_meta()
    if loaded.spec.backend.type == "ray":
        from sweepspec.run.ray_session import read_ray_ledger

        return rundir, read_ray_ledger(loaded, rundir), meta
    import optuna

    from sweepspec.compile.optuna_backend import compile_optuna, decode_choice
    from sweepspec.env import resolve_env

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = compile_optuna(loaded.spec, study_name=meta.get("study_name"))
    if loaded.spec.storage_is_url:
        storage: Any = optuna.storages.RDBStorage(resolve_env(loaded.spec.storage))
    else:
        from optuna.storages.journal import JournalFileBackend, JournalStorage

        storage = JournalStorage(JournalFileBackend(str(rundir.journal)))
    study = optuna.load_study(study_name=plan.study_name, storage=storage)

    def decode(params: dict[str, Any]) -> dict[str, Any]:
        return {
            k: decode_choice(v, plan.suggest[k].options) if k in plan.suggest else v
            for k, v in params.items()
        }

    return rundir, tally(study.get_trials(deepcopy=False), decode), meta
