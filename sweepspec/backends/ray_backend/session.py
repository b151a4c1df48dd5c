"""Run a sweep on Ray Tune (``backend: {type: ray}``): locally or on a Ray cluster.

The run directory is the Optuna backend's (``spec.yaml``, ``meta.json``, ``trials.csv``,
``best.yaml``, ``summary.json``, ``trials/<id>/``) plus:

- ``tune/``: the Ray experiment (``RunConfig(storage_path=<run dir>, name="tune")``); a re-run
  of the same spec restores it with ``Tuner.restore`` and goes on;
- ``ledger.jsonl``: the exactly-once record of trials, appended by a driver-side Ray callback
  when a trial starts and ends; on resume it is squared with Ray's last snapshot
  (:mod:`.restore`), and it is all a resume needs when Ray's own state is lost.

Ray writes ``tune/`` through :mod:`.atomic_fs`: every file whole or not at all.

Trial ids in ``trials.csv`` are the order in which trials were created (0, 1, ...), as on
the Optuna backend (the id of a trial dropped on resume goes to the one replacing it);
``trials/<ray trial id>/`` holds a trial's ``log.txt`` and error files.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from sweepspec.backends.ray_backend.atomic_fs import atomic_local_fs
from sweepspec.backends.ray_backend.compile import RayPlan, compile_ray
from sweepspec.backends.ray_backend.env import set_ray_env
from sweepspec.backends.ray_backend.ledger_file import LedgerFile
from sweepspec.backends.ray_backend.leftovers import forget_session, kill_leftovers, record_session
from sweepspec.backends.ray_backend.restore import StateDamaged, has_state, restore, set_aside
from sweepspec.errors import DISK_FULL_ERRNOS, Problem, SweepspecError, io_problem
from sweepspec.run.rundir import EXPERIMENT_NAME, RunDir
from sweepspec.run.session import ProgressSink, RunOptions, RunOutcome, Session
from sweepspec.spec.backend import RayBackend
from sweepspec.spec.read import LoadedSpec
from sweepspec.spec.root import Spec

if TYPE_CHECKING:
    from sweepspec.backends.ray_backend.callback import SweepCallback
    from sweepspec.backends.ray_backend.search import SpecSearchGenerator
    from sweepspec.backends.ray_backend.stopper import SpecStopper

__all__ = ["check_resources", "run_ray"]

log = logging.getLogger("sweepspec")


def _skip_callback_telemetry() -> None:
    """With usage stats off, skip Ray's count of the callbacks passed to a run: it imports the
    MLflow, W&B, Comet and Aim integrations only to name their classes (1.4 s when mlflow is
    installed) and records a tag that is never sent."""
    if os.environ.get("RAY_USAGE_STATS_ENABLED") != "0":
        return
    from ray.air._internal import usage

    if callable(getattr(usage, "tag_callbacks", None)):
        usage.tag_callbacks = lambda callbacks: False


# -- connecting -------------------------------------------------------------------------


def _connect(spec: Spec, rundir: RunDir) -> bool:
    """Start or join Ray; True when this call started it (and must shut it down)."""
    import ray

    if ray.is_initialized():
        return False
    kill_leftovers(rundir)  # of a local Ray a killed session of this run left
    backend = spec.backend
    address = backend.address if isinstance(backend, RayBackend) else None
    dashboard = backend.dashboard if isinstance(backend, RayBackend) else False
    try:
        if address in (None, "local"):
            # Ray runs its workers at nice 15 by default (polite on a cluster's spare machines);
            # here, as on the optuna backend, trials get the same priority as other work
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(
                address="local",
                num_cpus=len(os.sched_getaffinity(0)),
                include_dashboard=dashboard,
                log_to_driver=False,
                logging_level=logging.ERROR,
            )
            record_session(rundir)
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

    from sweepspec.backends.ray_backend.trainable import TrialContext, sweepspec_trainable

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
    generator: SpecSearchGenerator,
    stopper: SpecStopper,
    callback: SweepCallback,
    rundir: RunDir,
) -> tuple[Any, Any]:
    from ray import tune

    from sweepspec.backends.ray_backend.schedulers import build_scheduler

    single = plan.single_metric is not None
    mode: Any = plan.mode if single else None
    tune_config = tune.TuneConfig(
        metric=plan.single_metric,
        mode=mode,
        search_alg=generator,
        scheduler=build_scheduler(plan),
        num_samples=plan.num_samples,
        max_concurrent_trials=None,  # the generator's own ConcurrencyLimiter (changeable)
        time_budget_s=None,  # the generator's own deadline: running trials run to their end
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
        storage_filesystem=atomic_local_fs(),
    )
    return tune_config, run_config


# -- running ----------------------------------------------------------------------------


def _disk_full(exc: BaseException) -> OSError | None:
    """The full-disk error in ``exc``'s chain of causes, if there is one."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in DISK_FULL_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None


@contextlib.contextmanager
def _quiet_ray_logs() -> Iterator[None]:
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
    loaded: LoadedSpec, options: RunOptions, progress: ProgressSink | None = None
) -> RunOutcome:
    """Run or resume the sweep on Ray."""
    if options.worker:
        raise SweepspecError(
            Problem(
                "`sweepspec worker` joins an optuna-backend sweep; on the ray backend, add "
                "machines to the Ray cluster instead (see docs/cluster.md)",
                "backend.type",
                code="usage",
            )
        )
    set_ray_env()
    spec = loaded.spec
    from sweepspec.search.check import check_sampler

    check_sampler(compile_ray(spec).search)  # what the sampler refuses, before anything starts
    from sweepspec.run.objective import load_objective

    load_objective(spec.objective.function, loaded.base_dir)  # its errors, before Ray
    session = Session.open(loaded, options, EXPERIMENT_NAME)
    plan = compile_ray(spec)
    ledger_file = LedgerFile(session.rundir.ledger_file)
    reason, code = "done", 0
    concurrency: int | None = None
    owns_ray = failed = False
    try:
        budget = plan.time_budget_s
        if budget is not None:
            budget -= session.elapsed_before
        if ledger_file.ledger().finished >= plan.num_samples:
            reason = "done"
        elif budget is not None and budget <= 0:
            reason = "time_budget"
        else:
            owns_ray = _connect(spec, session.rundir)
            fits = check_resources(plan, _nodes())
            concurrency = min(fits, plan.max_concurrent or fits)
            reason, code = _fit(session, plan, ledger_file, progress, concurrency, budget)
    except KeyboardInterrupt:
        reason, code = "interrupted", 130
    except BaseException:
        failed = True
        raise
    finally:
        if owns_ray:
            import ray

            with contextlib.suppress(Exception):
                ray.shutdown()
            kill_leftovers(session.rundir)  # agents Ray's shutdown left running
            forget_session(session.rundir)
        ledger = ledger_file.ledger()
        try:
            elapsed = session.close(ledger, {"concurrency": concurrency})
        except SweepspecError:
            if not failed:
                raise
            # (the results cannot be written either, e.g. on a full disk: the first error is
            # the one to show)
    return RunOutcome(ledger, reason, code, elapsed)


def _fit(
    session: Session,
    plan: RayPlan,
    ledger_file: LedgerFile,
    progress: ProgressSink | None,
    concurrency: int,
    budget: float | None,
) -> tuple[str, int]:
    from ray import tune

    from sweepspec.backends.ray_backend.callback import SweepCallback
    from sweepspec.backends.ray_backend.search import SpecSearch, SpecSearchGenerator
    from sweepspec.backends.ray_backend.stopper import SpecStopper

    _skip_callback_telemetry()
    loaded, rundir = session.loaded, session.rundir
    trainable = _trainable(loaded, plan, rundir)
    path = rundir.experiment
    ledger = ledger_file.ledger()
    holder: dict[str, Any] = {}
    note = {"concurrency": concurrency}
    deadline = (
        None
        if budget is None
        else time.time() + budget - session.elapsed() + session.elapsed_before
    )

    def make_callback(stopper: SpecStopper) -> SweepCallback:
        for _ in range(ledger.failed - getattr(stopper, "failed", 0)):
            stopper.note_failure()  # trials.max_failed counts earlier sessions' failures too
        cb = SweepCallback(plan, ledger_file, stopper, progress, session.elapsed_before)
        cb.on_record = lambda ledger: session.update(ledger, note, total=plan.num_samples)
        holder["callback"], holder["stopper"] = cb, stopper
        return cb

    tuner = None
    adopted: list[dict[str, Any]] = []
    if has_state(path):
        try:
            tuner = restore(
                path,
                trainable,
                ledger_file,
                callback_factory=make_callback,
                num_samples=plan.num_samples,
                concurrency=concurrency,
                deadline=deadline,
            )
        except StateDamaged as exc:
            adopted = set_aside(path, ledger_file, f"is damaged: {exc}")
    elif ledger_file.events():  # trials ran, but Ray's state is gone
        adopted = set_aside(path, ledger_file, f"is missing ({path.name}/ has no tuner.pkl)")
    if tuner is None:
        searcher = SpecSearch(plan, seed=plan.search.seed)
        if session.old is not None:
            from sweepspec.backends import read_old_run
            from sweepspec.search.warm_start import warm_trials

            told = warm_trials(plan.search, read_old_run(loaded, session.old))
            copied = searcher.add_warm_trials(told)
            print(
                f"warm start: the searcher learns from {copied} trial(s) of the old run", flush=True
            )
        stopper = SpecStopper(plan)
        callback = make_callback(stopper)
        total = plan.num_samples - len(adopted)
        generator = SpecSearchGenerator(searcher, total, concurrency, deadline)
        generator.adopt(adopted)  # the trials that ended before Ray's state was lost
        callback.generator = generator
        tune_config, run_config = _configs(
            plan, generator=generator, stopper=stopper, callback=callback, rundir=rundir
        )
        tuner = tune.Tuner(
            trainable, param_space={}, tune_config=tune_config, run_config=run_config
        )
    try:
        with _quiet_ray_logs():
            tuner.fit()
    except Exception as exc:
        fatal = getattr(holder.get("callback"), "fatal", None)
        if fatal is not None:  # what stopped it, not Tune's wrapping of it
            raise fatal from None
        full = _disk_full(exc)
        if full is not None:  # Ray's own writes (its experiment state) met a full disk
            raise SweepspecError(
                io_problem(f"Ray could not write {full.filename or 'its files'}", full)
            ) from None
        raise
    last_stopper: SpecStopper | None = holder.get("stopper")
    last_callback: SweepCallback | None = holder.get("callback")
    done = ledger_file.ledger()
    if last_callback is not None and last_callback.interrupted:
        return "interrupted", 130
    if last_stopper is not None and last_stopper.reason:
        reason = last_stopper.reason
        return reason, 1 if reason.startswith("max_failed") else 0
    if done.finished >= plan.num_samples:
        return "done", 0
    generator_used = last_callback.generator if last_callback is not None else None
    if generator_used is not None and generator_used.stopped == "time_budget":
        return "time_budget", 0
    left = plan.num_samples - done.finished
    return (f"incomplete: Ray ended with {left} trial(s) unfinished; run again to resume them"), 1
