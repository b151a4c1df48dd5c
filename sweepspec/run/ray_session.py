"""Run a sweep on Ray Tune (``backend: {type: ray}``): locally or on a Ray cluster.

The run directory is the Optuna backend's (``spec.yaml``, ``meta.json``, ``trials.csv``,
``best.yaml``, ``summary.json``, ``trials/<id>/``) plus:

- ``tune/``: the Ray experiment (``RunConfig(storage_path=<run dir>, name="tune")``); a re-run
  of the same spec restores it with ``Tuner.restore`` and goes on;
- ``ledger.jsonl``: the exactly-once record of trials, appended by a driver-side Ray callback
  when a trial starts and ends. Ray snapshots its experiment state every few seconds and
  after every step in which a trial saved a checkpoint (``ray_driver.SnapshotOnCheckpoint``),
  so the last snapshot names each trial's newest checkpoint. On resume, :func:`reconcile`
  squares the ledger with the snapshot:

  - a trial the snapshot knows that ended after it is run again by Ray, recognised by its
    trial id: its trainable returns the recorded result without running the objective, it is
    never recorded twice, and the searcher is told that result again;
  - a trial the snapshot does not know that had ended is kept: it counts against the budget
    and is told to the searcher (``SpecSearch.adopt``), which does not run a replayed
    proposal of its config again;
  - a trial the snapshot does not know that was running is dropped and started over.

Trial ids in ``trials.csv`` are the order in which trials were created (0, 1, ...), as on
the Optuna backend (a dropped trial's id is not reused); ``trials/<ray trial id>/`` holds a
trial's ``log.txt`` and error files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from sweepspec.compile.ray_backend import EXPERIMENT_NAME, RayPlan, compile_ray
from sweepspec.errors import Problem, SweepspecError
from sweepspec.load import LoadedSpec
from sweepspec.run.ledger import Ledger, records_in_order
from sweepspec.run.rundir import RunDir
from sweepspec.tracking import MlflowSync, check_tracking, tracker_for

__all__ = ["read_ray_ledger", "run_ray"]

log = logging.getLogger("sweepspec")

#: Set before Ray Tune is imported (setdefault: a user's own value wins).
RAY_ENV = {
    # Ray's periodic experiment snapshot ("auto": at most 5% of the time); exact resume needs
    # one after every step in which a trial saved a checkpoint (ray_driver forces it)
    "TUNE_GLOBAL_CHECKPOINT_S": "auto",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no tables on the terminal
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # intermediate reports may lack the metric
    "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # the objective runs in the launch directory
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",  # 0: never warn
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray's own result loggers (result.json, progress.csv, TensorBoard) write every result of
    # every trial from the driver, and the TensorBoard one imports torch (2 s) at start-up;
    # sweepspec keeps results in ledger.jsonl and trials.csv. A user's own value wins.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}


def _env_defaults() -> None:
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)


def _skip_callback_telemetry() -> None:
    """With usage stats off, skip Ray's count of the callbacks passed to a run: it imports the
    MLflow, W&B, Comet and Aim integrations only to name their classes (1.4 s when mlflow is
    installed) and records a tag that is never sent."""
    if os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        return
    from ray.air._internal import usage

    if callable(getattr(usage, "tag_callbacks", None)):
        usage.tag_callbacks = lambda callbacks: False


_env_defaults()


def read_ray_ledger(loaded: LoadedSpec, rundir: RunDir) -> Ledger:
    """The trials of a ray run so far, from its ``ledger.jsonl`` (for status and results)."""
    from sweepspec.run.ray_trainable import LEDGER_FILE, LedgerFile

    _ = loaded
    return LedgerFile(rundir.path / LEDGER_FILE).ledger()


# -- connecting -------------------------------------------------------------------------


def _connect(spec: Any) -> bool:
    """Start or join Ray; True when this call started it (and must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    address = spec.backend.address
    try:
        if address in (None, "local"):
            # Ray runs its workers at nice 15 by default (polite on a cluster's spare machines);
            # here, as on the optuna backend, trials get the same priority as other work
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(
                address="local",
                num_cpus=len(os.sched_getaffinity(0)),
                include_dashboard=spec.backend.dashboard,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.ERROR)
    except Exception as exc:  # ConnectionError, RuntimeError, ValueError, ... from Ray
        where = (
            "start a local Ray"
            if address in (None, "local")
            else f"connect to the Ray cluster at {address}"
        )
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]
        raise SweepspecError(
            Problem(f"cannot {where}: {first}", "backend.address", code="ray")
        ) from None
    return True


def _nodes() -> list[dict[str, float]]:
    import ray

    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [dict(n.get("Resources") or {}) for n in nodes if n.get("Alive")]


def check_resources(plan: RayPlan, nodes: list[dict[str, float]]) -> int:
    """Trials that fit at once on ``nodes``; an error if one trial fits on no node."""
    eps = 1e-9
    per_node = []
    for res in nodes:
        n = int(res.get("CPU", 0.0) / plan.cpu + eps)
        if plan.gpu:
            n = min(n, int(res.get("GPU", 0.0) / plan.gpu + eps))
        per_node.append(n)
    if not any(per_node):
        largest = max(nodes, key=lambda r: (r.get("GPU", 0.0), r.get("CPU", 0.0)), default={})
        need = f"{plan.cpu:g} CPU" + (f" and {plan.gpu:g} GPU" if plan.gpu else "")
        have = (
            f"{largest.get('CPU', 0.0):g} CPU and {largest.get('GPU', 0.0):g} GPU"
            if largest
            else "no live node"
        )
        raise SweepspecError(
            Problem(
                f"each trial needs {need}, but no node of the Ray cluster has that much "
                f"(the largest has {have})",
                "resources.per_trial",
                code="resources",
            )
        )
    return sum(per_node)


# -- building the tuner -----------------------------------------------------------------


def _trainable(loaded: LoadedSpec, plan: RayPlan, rundir: RunDir) -> Any:
    from ray import tune

    from sweepspec.run.ray_trainable import TrialContext, sweepspec_trainable

    ctx = TrialContext(
        target=loaded.spec.objective.function,
        base_dir=str(loaded.base_dir.absolute()),
        plan=plan,
        rundir=str(rundir.path),
        cwd=os.getcwd(),
        sys_path=tuple(p if p else os.getcwd() for p in sys.path),
    )
    return tune.with_resources(tune.with_parameters(sweepspec_trainable, ctx=ctx), plan.resources)


def _configs(
    plan: RayPlan,
    *,
    searcher: Any,
    stopper: Any,
    callback: Any,
    concurrency: int | None,
    budget: float | None,
    rundir: RunDir,
) -> tuple[Any, Any]:
    from ray import tune

    from sweepspec.run.ray_driver import SpecSearchGenerator

    single = plan.single_metric is not None
    mode: Any = plan.mode if single else None
    tune_config = tune.TuneConfig(
        metric=plan.single_metric,
        mode=mode,
        search_alg=SpecSearchGenerator(searcher, plan.num_samples, concurrency),
        scheduler=plan.build_scheduler(),
        num_samples=plan.num_samples,
        max_concurrent_trials=None,  # the generator's own ConcurrencyLimiter (changeable)
        time_budget_s=budget,
        reuse_actors=True,
    )
    run_config = tune.RunConfig(
        name=EXPERIMENT_NAME,
        storage_path=str(rundir.path),
        verbose=0,
        stop=stopper,
        callbacks=[callback],
        failure_config=tune.FailureConfig(max_failures=plan.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=plan.keep_checkpoints),
    )
    return tune_config, run_config


def _restore(
    path: Path,
    trainable: Any,
    ledger_file: Any,
    *,
    callback_factory: Any,
    num_samples: int,
    concurrency: int | None,
    budget: float | None,
) -> Any | None:
    """``Tuner.restore`` of the experiment at ``path``, with this session's callback and
    budget (``num_samples``, time budget, concurrency: Ray would restore the old ones); None
    when its state is damaged and no trial has finished (start over)."""
    import pickle

    from ray import tune

    try:
        tuner = tune.Tuner.restore(
            str(path),
            trainable,
            param_space={},
            resume_unfinished=True,
            resume_errored=False,
            restart_errored=False,
        )
    except (
        EOFError,
        pickle.UnpicklingError,
        ValueError,
        TypeError,
        AttributeError,
        ImportError,
    ) as exc:
        finished = ledger_file.ledger().finished
        if finished == 0:
            aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}")
            shutil.move(str(path), str(aside))
            from sweepspec.run.ray_trainable import LEDGER_FILE

            started = path.parent / LEDGER_FILE  # only starts of trials that start over
            if started.exists():
                shutil.move(str(started), str(aside / LEDGER_FILE))
            print(
                f"the Ray experiment state was damaged ({type(exc).__name__}); no trial had "
                f"finished, so the sweep starts over (old state kept in {aside})",
                file=sys.stderr,
                flush=True,
            )
            return None
        raise SweepspecError(
            Problem(
                f"the Ray experiment state in {path} is damaged ({type(exc).__name__}: "
                f"{str(exc)[:200]}) and {finished} trial(s) had finished. Run with "
                "--fresh to start over (the old run is kept aside), or --warm-start to start a "
                "new run whose searcher first learns from the finished trials",
                code="ray-state",
            )
        ) from None
    inner = getattr(tuner, "_local_tuner", None)
    if inner is None:  # Ray Client: the restored callbacks and budget are used as saved
        return tuner
    adopted = reconcile(path, ledger_file)
    run_config = inner._run_config
    stopper = run_config.stop
    run_config.callbacks = [callback_factory(stopper)]
    inner._tune_config.time_budget_s = budget
    search_alg = inner._tune_config.search_alg
    if hasattr(search_alg, "override"):
        search_alg.override(num_samples - len(adopted), concurrency)
        search_alg.adopt(adopted)
    return tuner


def reconcile(path: Path, ledger_file: Any) -> list[dict[str, Any]]:
    """Square ``ledger.jsonl`` with Ray's last experiment snapshot before a restore.

    Ray saves its state every few seconds (and after each checkpoint), not after every trial
    it adds, so a killed driver leaves trials that the snapshot does not know:

    * those that had ended are in the ledger. They are kept: the returned end events are
      counted against ``num_samples`` and told to the searcher (it never saw them), and
      none is run again;
    * those that were running get a ``drop`` event and are started over as new trials.

    The trials the snapshot knows need nothing: Ray resumes them, and one that had ended
    returns its recorded result without running (``ray_trainable``).
    """
    known = _snapshot_trial_ids(path)
    if known is None:
        return []
    events = ledger_file.events()
    ends = ledger_file.ends()
    adopted = [e for ray_id, e in ends.items() if ray_id not in known]
    settled = known | ends.keys() | {e["ray_id"] for e in events if e.get("event") == "drop"}
    lost = [e["ray_id"] for e in events if e.get("event") == "start" and e["ray_id"] not in settled]
    for ray_id in lost:
        ledger_file.append({"event": "drop", "ray_id": ray_id}, sync=True)
    if adopted or lost:
        print(
            f"resume: {len(adopted)} trial(s) ended after Ray's last snapshot and are kept "
            f"from ledger.jsonl; {len(lost)} trial(s) that were running then start over",
            file=sys.stderr,
            flush=True,
        )
    return adopted


def _snapshot_trial_ids(path: Path) -> set[str] | None:
    """The Ray trial ids in the experiment state that ``Tuner.restore`` will load (the same
    file Ray picks); None if it cannot be read (Ray then reports the damage itself)."""
    import json

    from ray.tune.execution.experiment_state import _find_newest_experiment_checkpoint

    try:
        newest = _find_newest_experiment_checkpoint(str(path))
        if newest is None:
            return set()
        state = json.loads(Path(newest).read_text(encoding="utf-8"))
        return {str(json.loads(trial)["trial_id"]) for trial, _meta in state["trial_data"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _has_state(path: Path) -> bool:
    from ray import tune

    return bool(tune.Tuner.can_restore(str(path)))


def _old_trials(old: Path, loaded: LoadedSpec) -> list[tuple[dict[str, Any], list[float]]]:
    """(encoded params, values) of the old run's COMPLETE trials (either backend)."""
    from sweepspec.compile.optuna_backend import encode_choice
    from sweepspec.run.ray_trainable import LEDGER_FILE, LedgerFile

    names = list(loaded.spec.objective.directions)
    if (old / LEDGER_FILE).exists():
        out = []
        for r in LedgerFile(old / LEDGER_FILE).ledger().records.values():
            vals = [r.metrics.get(n) for n in names]
            numbers = [float(v) for v in vals if isinstance(v, int | float)]
            if r.state == "COMPLETE" and len(numbers) == len(names):
                out.append(({k: encode_choice(v) for k, v in r.params.items()}, numbers))
        return out
    if (old / "study.journal").exists():
        from sweepspec.run.warm_start import _old_trials as optuna_old

        return [
            (dict(t.params), list(t.values))
            for t in optuna_old(old, loaded)
            if t.values is not None
        ]
    return []


# -- running ----------------------------------------------------------------------------


@contextlib.contextmanager
def _quiet_ray_logs() -> Any:
    """Ray Tune logs each failed trial's traceback at ERROR; sweepspec records it in the trial
    directory and shows one line (SWEEPSPEC_DEBUG=1 shows Ray's logs)."""
    if os.environ.get("SWEEPSPEC_DEBUG") == "1":
        yield
        return
    logger = logging.getLogger("ray.tune")
    level = logger.level
    logger.setLevel(logging.CRITICAL)
    try:
        yield
    finally:
        logger.setLevel(level)


def run_ray(
    loaded: LoadedSpec,
    *,
    fresh: bool = False,
    warm_start: bool = False,
    worker: bool = False,
    progress: Any = None,
) -> Any:
    """Run or resume the sweep on Ray; returns the RunOutcome."""
    from sweepspec.run.optuna_runner import RunOutcome
    from sweepspec.run.optuna_session import _prepare_rundir, write_run_results
    from sweepspec.run.ray_trainable import LEDGER_FILE, LedgerFile

    if worker:
        raise SweepspecError(
            Problem(
                "`sweepspec worker` joins an optuna-backend sweep; on the ray backend, add "
                "machines to the Ray cluster instead (see docs/cluster.md)",
                "backend.type",
                code="usage",
            )
        )
    _env_defaults()
    spec = loaded.spec
    check_tracking(spec)
    rundir, old = _prepare_rundir(loaded, fresh, warm_start)
    meta = rundir.read_meta() if rundir.exists() else rundir.create(loaded, EXPERIMENT_NAME)
    tracker = tracker_for(spec, meta)
    plan = compile_ray(spec)
    ledger_file = LedgerFile(rundir.path / LEDGER_FILE)
    elapsed_before = float(meta.get("elapsed_s", 0.0))
    started = time.monotonic()
    ledger = ledger_file.ledger()
    reason = "done"
    code = 0
    concurrency: int | None = None
    owns_ray = False
    try:
        budget = plan.time_budget_s
        if budget is not None:
            budget -= elapsed_before
        if ledger.finished >= plan.num_samples:
            reason = "done"
        elif budget is not None and budget <= 0:
            reason = "time_budget"
        else:
            from sweepspec.objective_loader import load_objective

            load_objective(spec.objective.function, loaded.base_dir)  # its errors, before Ray
            owns_ray = _connect(spec)
            fits = check_resources(plan, _nodes())
            concurrency = min(fits, plan.max_concurrent or fits)
            reason, code = _fit(
                loaded,
                plan,
                rundir,
                old if warm_start else None,
                ledger_file,
                progress,
                elapsed_before,
                concurrency,
                budget,
                tracker,
            )
    except KeyboardInterrupt:
        reason, code = "interrupted", 130
    finally:
        if owns_ray:
            import ray

            with contextlib.suppress(Exception):
                ray.shutdown()
        ledger = ledger_file.ledger()
        meta["elapsed_s"] = elapsed_before + time.monotonic() - started
        rundir.write_meta(meta)
        write_run_results(
            rundir,
            loaded,
            ledger,
            {"elapsed_s": round(meta["elapsed_s"], 3), "concurrency": concurrency},
        )
        if tracker is not None:
            tracker.close(records_in_order(ledger))
    return RunOutcome(ledger, reason, code, elapsed_before + time.monotonic() - started)


def _fit(
    loaded: LoadedSpec,
    plan: RayPlan,
    rundir: RunDir,
    old: Path | None,
    ledger_file: Any,
    progress: Any,
    elapsed_before: float,
    concurrency: int,
    budget: float | None,
    tracker: MlflowSync | None = None,
) -> tuple[str, int]:
    from ray import tune

    from sweepspec.run.ray_driver import SweepCallback

    _skip_callback_telemetry()
    trainable = _trainable(loaded, plan, rundir)
    path = rundir.path / EXPERIMENT_NAME
    ledger = ledger_file.ledger()
    holder: dict[str, Any] = {}

    def make_callback(stopper: Any) -> Any:
        for _ in range(ledger.failed - getattr(stopper, "failed", 0)):
            stopper.note_failure()  # trials.max_failed counts earlier sessions' failures too
        cb = SweepCallback(plan, ledger_file, stopper, progress, elapsed_before)
        if tracker is not None:
            cb.on_record = lambda ledger: tracker.sync_in_background(records_in_order(ledger))
        holder["callback"], holder["stopper"] = cb, stopper
        return cb

    tuner = None
    if _has_state(path):
        tuner = _restore(
            path,
            trainable,
            ledger_file,
            callback_factory=make_callback,
            num_samples=plan.num_samples,
            concurrency=concurrency,
            budget=budget,
        )
    elif ledger.finished:
        raise SweepspecError(
            Problem(
                f"{ledger.finished} trial(s) of this run finished, but its Ray experiment state "
                f"({path}) is missing. Run with --fresh to start over (the old run is kept "
                "aside), or --warm-start to learn from the finished trials",
                code="ray-state",
            )
        )
    if tuner is None:
        searcher = plan.build_searcher()
        if old is not None:
            copied = searcher.add_warm_trials(_old_trials(old, loaded))
            print(
                f"warm start: the searcher learns from {copied} trial(s) of the old run", flush=True
            )
        stopper = plan.build_stopper()
        callback = make_callback(stopper)
        tune_config, run_config = _configs(
            plan,
            searcher=searcher,
            stopper=stopper,
            callback=callback,
            concurrency=concurrency,
            budget=budget,
            rundir=rundir,
        )
        tuner = tune.Tuner(
            trainable, param_space={}, tune_config=tune_config, run_config=run_config
        )
    with _quiet_ray_logs():
        tuner.fit()
    stopper = holder.get("stopper")
    callback = holder.get("callback")
    done = ledger_file.ledger()
    if callback is not None and callback.interrupted:
        return "interrupted", 130
    if stopper is not None and stopper.reason:
        return stopper.reason, 1 if stopper.reason.startswith("max_failed") else 0
    if done.finished >= plan.num_samples:
        return "done", 0
    elapsed = callback.elapsed() if callback is not None else elapsed_before
    if plan.time_budget_s is not None and elapsed >= plan.time_budget_s - 1.0:
        return "time_budget", 0
    left = plan.num_samples - done.finished
    return (f"incomplete: Ray ended with {left} trial(s) unfinished; run again to resume them"), 1
