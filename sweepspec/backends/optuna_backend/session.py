"""Run a sweep on the Optuna backend: the study (created once, checked on every resume) under
the create gate, ``try_first``, ``--warm-start``, how many trials run at once, then the
runner's loop inside the shared session (run directory, run time, results, tracking)."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from typing import TYPE_CHECKING

from sweepspec.backends.optuna_backend.compile import compile_optuna
from sweepspec.backends.optuna_backend.gate import gate_for
from sweepspec.backends.optuna_backend.storage import open_study
from sweepspec.errors import Problem, SweepspecError
from sweepspec.run.objective import load_objective
from sweepspec.run.session import ProgressSink, RunOptions, RunOutcome, Session
from sweepspec.search.check import check_sampler
from sweepspec.search.plan import compile_search
from sweepspec.search.warm_start import add_finished, warm_trials
from sweepspec.spec.backend import OptunaBackend
from sweepspec.spec.read import LoadedSpec
from sweepspec.spec.root import Spec

if TYPE_CHECKING:
    import optuna

__all__ = ["concurrency_for", "run_optuna"]

TRY_FIRST_ATTR = "sweepspec:try_first_enqueued"


def concurrency_for(spec: Spec) -> tuple[int, list[str]]:
    """(trials at once, GPU slots as CUDA_VISIBLE_DEVICES values)."""
    cpus = len(os.sched_getaffinity(0))
    per = spec.resources.per_trial
    fit = max(1, int(cpus // per.cpu))
    slots: list[str] = []
    if per.gpu > 0:
        gpus = _gpu_ids()
        if not gpus:
            raise SweepspecError(
                Problem(
                    f"each trial needs {per.gpu:g} GPU, but this machine has none visible",
                    "resources.per_trial.gpu",
                    code="resources",
                )
            )
        if per.gpu < 1:
            per_gpu = int(1 // per.gpu)
            slots = [g for g in gpus for _ in range(per_gpu)]
        else:
            n = int(per.gpu)
            slots = [",".join(gpus[i : i + n]) for i in range(0, len(gpus) - n + 1, n)]
        fit = min(fit, len(slots))
    chosen: int | str = spec.resources.max_concurrent
    if isinstance(spec.backend, OptunaBackend) and spec.backend.workers != "auto":
        chosen = spec.backend.workers
    n = fit if chosen == "auto" else int(chosen)
    if slots:
        n = min(n, len(slots))
    return n, slots


def _gpu_ids() -> list[str]:
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [v for v in visible.split(",") if v.strip() and v.strip() != "-1"]
    import shutil
    import subprocess

    if not shutil.which("nvidia-smi"):
        return []
    out = subprocess.run(
        ["nvidia-smi", "-L"], check=False, capture_output=True, text=True, timeout=10
    )
    return [str(i) for i, line in enumerate(out.stdout.splitlines()) if line.startswith("GPU")]


def run_optuna(
    loaded: LoadedSpec, options: RunOptions, progress: ProgressSink | None = None
) -> RunOutcome:
    """Run or resume the sweep (or join it: ``options.worker``)."""
    import optuna

    from sweepspec.backends.optuna_backend.runner import OptunaRunner

    # the user chose the sampler options; Optuna's "experimental" notes are not news here
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
    spec = loaded.spec
    check_sampler(compile_search(spec))  # what the sampler refuses, before anything is written
    func = load_objective(spec.objective.function, loaded.base_dir)  # the user's code's errors
    study_name = spec.run_name
    if spec.storage_is_url and (options.fresh or options.warm_start) and not options.worker:
        study_name = f"{spec.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    session = Session.open(loaded, options, study_name)
    plan = compile_optuna(spec, study_name=session.meta.get("study_name", study_name))
    url = spec.storage if spec.storage_is_url else None
    create_gate = gate_for(url, session.rundir)  # database-wide: concurrent creates race
    try:
        with create_gate:
            study = open_study(loaded, session.rundir, plan, create=not options.worker)
            if session.old is not None:
                from sweepspec.backends import read_old_run

                told = warm_trials(plan.search, read_old_run(loaded, session.old))
                copied = sum(
                    add_finished(study, plan.search, params, values, "COMPLETE", {"warm": True})
                    for params, values in told
                )
                print(f"warm start: the searcher learns from {copied} trial(s) of the old run")
            _enqueue_try_first(plan.search.try_first, study)
    finally:
        create_gate.close()
    concurrency, slots = concurrency_for(spec)
    runner = OptunaRunner(
        session,
        plan,
        study,
        func,
        concurrency=concurrency,
        gpu_slots=slots,
        progress=progress,
        gate=gate_for(url, session.rundir, plan.study_name),
    )
    note = {"concurrency": concurrency}
    try:
        outcome = runner.run()
    except BaseException:
        # the error that stopped the run says what happened; when the storage or the run
        # directory cannot be read or written any more (damaged or deleted under the run),
        # the results files stay as last written
        runner.gate.close()
        with contextlib.suppress(SweepspecError):
            session.close(runner.ledger(), note)
        raise
    runner.gate.close()
    outcome.elapsed_s = session.close(runner.ledger(), note)
    return outcome


def _enqueue_try_first(points: tuple[dict[str, object], ...], study: optuna.Study) -> None:
    if not points or study.user_attrs.get(TRY_FIRST_ATTR):
        return
    for i, params in enumerate(points):
        study.enqueue_trial(dict(params), user_attrs={"try_first": i}, skip_if_exists=True)
    study.set_user_attr(TRY_FIRST_ATTR, True)
