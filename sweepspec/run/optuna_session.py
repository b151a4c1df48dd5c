"""Set up and run a sweep on the Optuna backend: the run directory, the storage and study
(created once, checked on every resume), ``try_first``, ``--warm-start``, concurrency."""

from __future__ import annotations

import logging
import os
import re
import time
from pathlib import Path
from typing import Any

from sweepspec.compile.optuna_backend import OptunaPlan, compile_optuna, encode_choice
from sweepspec.env import resolve_env
from sweepspec.errors import Problem, SweepspecError
from sweepspec.load import LoadedSpec
from sweepspec.results import write_results
from sweepspec.run.gate import gate_for
from sweepspec.run.ledger import Ledger, records_in_order
from sweepspec.run.rundir import RunDir, changed_sections, fingerprint
from sweepspec.spec.checks import mask_url
from sweepspec.tracking import check_tracking, tracker_for

__all__ = ["concurrency_for", "open_study", "run_optuna", "write_run_results"]

log = logging.getLogger("sweepspec")
FP_ATTR = "sweepspec:fingerprint"
TRY_FIRST_ATTR = "sweepspec:try_first_enqueued"
SESSIONS_ATTR = "sweepspec:sessions"  # processes that opened the study so far (run or worker)


def _storage(spec: Any, rundir: RunDir) -> Any:
    if not spec.storage_is_url:
        from sweepspec.run.journal import open_journal_storage

        return open_journal_storage(rundir.journal)
    import optuna

    url = sqlalchemy_url(resolve_env(spec.storage))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # sqlalchemy raises many kinds for a bad URL or server
        raise SweepspecError(
            Problem(
                f"cannot open the storage {mask_url(spec.storage)}: "
                f"{str(exc).splitlines()[0][:300]}",
                "storage",
                code="storage",
            )
        ) from None


def sqlalchemy_url(url: str) -> str:
    """Name the installed driver: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3,
    while sweepspec[postgres] installs psycopg2."""
    import importlib.util

    if re.match(r"postgres(ql)?://", url) and importlib.util.find_spec("psycopg") is None:
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)
    return url


def open_study(loaded: LoadedSpec, rundir: RunDir, plan: OptunaPlan, *, create: bool) -> Any:
    """Create (once) or load the study; refuse one made from a different spec."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = _storage(loaded.spec, rundir)
    fp = fingerprint(loaded)
    n_existing = 0
    try:
        study = optuna.load_study(study_name=plan.study_name, storage=storage)
        n_existing = len(study.get_trials(deepcopy=False))
    except KeyError:
        if not create:
            raise SweepspecError(
                Problem(
                    f"no sweep {plan.study_name!r} in the storage yet; "
                    "start it with `sweepspec run` first",
                    code="no-study",
                )
            ) from None
        study = optuna.create_study(
            study_name=plan.study_name, storage=storage, directions=plan.directions
        )
        study.set_user_attr(FP_ATTR, fp)
    old = study.user_attrs.get(FP_ATTR)
    if old and old != fp:
        raise _changed(changed_sections(old, fp))
    if [d.name.lower() for d in study.directions] != plan.directions:
        raise _changed(["objective"])
    # called under the create gate: each process that opens the study gets its own number
    session = int(study.user_attrs.get(SESSIONS_ATTR, 0))
    study.set_user_attr(SESSIONS_ATTR, session + 1)
    seed = loaded.spec.searcher.seed
    if seed is not None and plan.sampler not in ("QMCSampler", "GridSampler"):
        # never replay the startup points of an earlier session, nor those of a worker that
        # opened the study at the same count (same seed: the same points, duplicated trials)
        seed = seed + n_existing + 100_003 * session
    study.sampler = plan.build_sampler(seed)
    study.pruner = plan.build_pruner()
    return study


def _changed(sections: list[str]) -> SweepspecError:
    return SweepspecError(
        Problem(
            f"the spec changed since this run was created ({', '.join(sections)}); its old results "
            "would be meaningless. Run with --fresh to start over (the old run is kept aside) or "
            "--warm-start to start a new run that first learns from the old trials",
            code="spec-changed",
        )
    )


def _enqueue_try_first(loaded: LoadedSpec, plan: OptunaPlan, study: Any) -> None:
    if not loaded.spec.try_first or study.user_attrs.get(TRY_FIRST_ATTR):
        return
    from sweepspec.space import flatten_config

    for i, entry in enumerate(loaded.spec.try_first):
        flat = flatten_config(entry)
        params = {k: encode_choice(v) for k, v in flat.items() if k in plan.suggest}
        study.enqueue_trial(params, user_attrs={"try_first": i}, skip_if_exists=True)
    study.set_user_attr(TRY_FIRST_ATTR, True)


def concurrency_for(spec: Any) -> tuple[int, list[str]]:
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
    backend = spec.backend
    chosen = spec.resources.max_concurrent
    if getattr(backend, "workers", "auto") != "auto":
        chosen = backend.workers
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


def write_run_results(
    rundir: RunDir, loaded: LoadedSpec, ledger: Ledger, extra: dict[str, Any]
) -> dict[str, Any]:
    spec = loaded.spec
    paths = [p.path for p in spec.sampled_params()]
    total = compile_optuna(spec).total_trials  # num_samples x grid points
    return write_results(
        rundir.path,
        records_in_order(ledger),
        spec.objective.directions,
        paths,
        {"name": spec.run_name, "backend": spec.backend.type, "num_samples": total, **extra},
    )


def _prepare_rundir(
    loaded: LoadedSpec, fresh: bool, warm_start: bool
) -> tuple[RunDir, Path | None]:
    rundir = RunDir.for_spec(loaded)
    old: Path | None = None
    if rundir.exists() and (fresh or warm_start):
        old = rundir.move_aside()
        print(f"previous run kept in {old}", flush=True)
    if rundir.exists():
        meta = rundir.read_meta()
        changed = changed_sections(meta.get("fingerprint", {}), fingerprint(loaded))
        if changed:
            raise _changed(changed)
    return rundir, old


def run_optuna(
    loaded: LoadedSpec,
    *,
    fresh: bool = False,
    warm_start: bool = False,
    worker: bool = False,
    progress: Any = None,
) -> Any:
    """Run or resume the sweep; returns the RunOutcome."""
    from sweepspec.objective_loader import load_objective
    from sweepspec.run.optuna_runner import OptunaRunner

    spec = loaded.spec
    check_tracking(spec)
    rundir, old = _prepare_rundir(loaded, fresh and not worker, warm_start and not worker)
    study_name = spec.run_name
    if spec.storage_is_url and (fresh or warm_start) and not worker:
        study_name = f"{spec.run_name}-{time.strftime('%Y%m%d-%H%M%S')}"
    meta = rundir.read_meta() if rundir.exists() else rundir.create(loaded, study_name)
    plan = compile_optuna(spec, study_name=meta.get("study_name", study_name))
    url = spec.storage if spec.storage_is_url else None
    create_gate = gate_for(url, rundir)  # database-wide: concurrent schema/study creates race
    try:
        with create_gate:
            study = open_study(loaded, rundir, plan, create=not worker)
            if old is not None and warm_start:
                from sweepspec.run.warm_start import warm_start_from

                warm_start_from(old, loaded, plan, study)
            _enqueue_try_first(loaded, plan, study)
    finally:
        create_gate.close()
    func = load_objective(spec.objective.function, loaded.base_dir)
    concurrency, slots = concurrency_for(spec)
    tracker = None if worker else tracker_for(spec, meta)  # the `run` process logs

    def results_writer(ledger: Ledger) -> None:
        write_run_results(rundir, loaded, ledger, {"concurrency": concurrency, "running": True})
        if tracker is not None:
            tracker.sync_in_background(records_in_order(ledger))

    runner = OptunaRunner(
        loaded,
        rundir,
        plan,
        study,
        func,
        concurrency=concurrency,
        gpu_slots=slots,
        progress=progress,
        elapsed_before=float(meta.get("elapsed_s", 0.0)),
        gate=gate_for(url, rundir, plan.study_name),
        results_writer=results_writer,
    )
    started = time.monotonic()
    try:
        outcome = runner.run()
    finally:
        runner.gate.close()
        ledger = runner._ledger()
        meta["elapsed_s"] = float(meta.get("elapsed_s", 0.0)) + time.monotonic() - started
        rundir.write_meta(meta)
        write_run_results(
            rundir,
            loaded,
            ledger,
            {"elapsed_s": round(meta["elapsed_s"], 3), "concurrency": concurrency},
        )
        if tracker is not None:
            tracker.close(records_in_order(ledger))
    return outcome
