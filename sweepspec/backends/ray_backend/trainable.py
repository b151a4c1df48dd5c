"""The worker side of the ray backend: the trainable. Light on purpose (Ray Tune's function
API, no Optuna): every Ray worker imports it. The driver's Ray objects are in the modules
beside it (search, schedulers, stopper, callback) and its session in ``session.py``.

The trainable (:func:`sweepspec_trainable`, a stable name: Ray checks it on restore) runs the
objective in a process forked from the Ray actor, exactly as the Optuna backend does
(:mod:`sweepspec.run.child`): the objective's ``trial.report`` goes over a pipe to the actor,
which passes it to ``ray.tune.report`` (with a Ray checkpoint holding the pickled state) and
answers once Ray lets the trial go on. The actor enforces ``trials.timeout`` by killing the
child's process group, turns NaN/inf and missing metrics into failed trials before any
scheduler or searcher sees them, and fails a PBT trial that reports without a checkpoint.

Failures: an exception in the objective (or a crashed trial process) is retriable: the
trainable raises :class:`TrialFailed` and Ray retries the trial
(``FailureConfig(max_failures=trials.max_retries)``) from its last checkpoint. A timeout, NaN,
a missing metric or a PBT report without a checkpoint is final: no retry can fix it, so the
trainable does not raise (Ray would retry) but reports one last result holding only
``sweepspec_failed: <reason>``; the stopper ends the trial on it before any scheduler sees it,
the searcher tells it to Optuna as FAIL, and the driver records it FAILED. The reason is also
kept in ``final_error.txt`` in the trial directory, in case Ray starts the trial again.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepspec.backends.ray_backend.compile import RayPlan
from sweepspec.backends.ray_backend.ledger_file import LedgerFile
from sweepspec.records import is_finite_number
from sweepspec.run.child import (
    ChildTask,
    died_before_returning,
    discard,
    fork_child,
    kill_group,
    next_task,
)
from sweepspec.run.objective import Objective, load_objective
from sweepspec.run.rundir import CHECKPOINT, FINAL_ERROR, TRIAL_LOG, RunDir
from sweepspec.run.trial_log import cap_log
from sweepspec.search.params import active_values
from sweepspec.search.score import SCORE

__all__ = [
    "CHECKPOINT_KEY",
    "FAILED_KEY",
    "ITERATIONS_KEY",
    "REPLAY_KEY",
    "TrialContext",
    "TrialFailed",
    "sweepspec_trainable",
]

STATE_FILE = "sweepspec.json"  # beside the pickled state in a Ray checkpoint
STOP_GRACE_S = 1.0  # Ray waits 2 s for a stopped function before it replaces the actor
KILL_GRACE_S = 2.0
ITERATIONS_KEY = "sweepspec_iterations"
CHECKPOINT_KEY = "sweepspec_checkpoint"  # in a result that comes with a checkpoint
FAILED_KEY = "sweepspec_failed"  # the last result of a trial that failed for good
REPLAY_KEY = "sweepspec_replay"  # the recorded result of a trial that had ended, reported again
PBT_NEEDS_CHECKPOINTS = "pbt needs checkpoints: pass checkpoint= to trial.report"


# -- the trainable ----------------------------------------------------------------------


class TrialFailed(RuntimeError):
    """A trial attempt failed in a way worth retrying (an exception in the objective, a crashed
    trial process): Ray runs it again, up to ``trials.max_retries`` times."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> Any:
        return (TrialFailed, (self.message,))

    def __str__(self) -> str:
        return self.message


class _FinalFailure(Exception):
    """A failure that no retry can fix (timeout, NaN, missing metric, PBT without checkpoints).

    The trainable does not raise it to Ray (which would retry); it reports a last result that
    holds only :data:`FAILED_KEY`: the stopper ends the trial there, before any scheduler sees
    it, the searcher tells it as FAIL and the driver records it FAILED."""

    def __init__(self, message: str, iterations: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.iterations = iterations


@dataclass(frozen=True)
class TrialContext:
    """What every trial needs (plain data; shipped to workers with ``tune.with_parameters``)."""

    target: str
    base_dir: str
    plan: RayPlan
    rundir: str
    cwd: str
    sys_path: tuple[str, ...]

    @property
    def ledger(self) -> LedgerFile:
        return LedgerFile(RunDir(Path(self.rundir)).ledger_file)


_OBJECTIVES: dict[tuple[str, str], Objective] = {}
#: This actor's idle trial process, kept for its next trial (``reuse_actors``): the objective
#: (target, base dir) it runs, its process and pipe. Forking one per trial cost ~14 ms here.
_IDLE: dict[str, Any] = {}


def _objective(ctx: TrialContext) -> Objective:
    key = (ctx.target, ctx.base_dir)
    if key not in _OBJECTIVES:
        for entry in reversed(ctx.sys_path):
            if entry not in sys.path and os.path.isdir(entry):
                sys.path.insert(0, entry)
        _OBJECTIVES[key] = load_objective(ctx.target, Path(ctx.base_dir))
    return _OBJECTIVES[key]


def sweepspec_trainable(config: dict[str, Any], ctx: TrialContext) -> None:
    """Run one trial attempt of the objective under Ray (see the module docstring)."""
    from ray import tune

    ray_id = tune.get_context().get_trial_id()
    plan = ctx.plan
    tdir = RunDir(Path(ctx.rundir)).trial_dir(ray_id)
    tdir.mkdir(parents=True, exist_ok=True)
    if os.path.isdir(ctx.cwd):
        os.chdir(ctx.cwd)  # as on the Optuna backend: relative paths mean the launch directory
    try:
        recorded = ctx.ledger.end_of(ray_id)
        if recorded is not None:  # Ray runs it again after a restore: it already ended
            iterations = int(recorded.get("iterations") or 0)
            if recorded.get("state") == "FAILED":
                raise _FinalFailure(str(recorded.get("error") or "failed"), iterations)
            tune.report(
                {**recorded.get("metrics", {}), ITERATIONS_KEY: iterations, REPLAY_KEY: True}
            )
            return
        marker = tdir / FINAL_ERROR
        if marker.exists():
            raise _FinalFailure(marker.read_text(encoding="utf-8").strip() or "failed")
        values = active_values(plan.space, config)
        space = plan.space
        violated = space.violated({**space.fixed_values(values), **values})
        if violated:
            _final(tdir, f"constraints: the config breaks constraint(s) {violated}")
        _Attempt(ctx, tdir, space.build_config(values)).run()
    except _FinalFailure as failure:
        tune.report({FAILED_KEY: failure.message, ITERATIONS_KEY: failure.iterations})


def _final(tdir: Path, message: str, iterations: int = 0) -> None:
    with contextlib.suppress(OSError):
        (tdir / FINAL_ERROR).write_text(message + "\n", encoding="utf-8")
    raise _FinalFailure(message, iterations)


class _Attempt:
    """One attempt of one trial in this actor: the forked child and its pipe."""

    def __init__(self, ctx: TrialContext, tdir: Path, config: dict[str, Any]) -> None:
        self.ctx = ctx
        self.plan = ctx.plan
        self.tdir = tdir
        self.config = config
        self.metrics: dict[str, Any] = {}
        self.forwarded: dict[str, Any] | None = None
        self.iterations = 0
        self.process: Any = None
        self.conn: Any = None
        self.finished = False  # the child sent its last message

    def run(self) -> None:
        func = _objective(self.ctx)
        self.iterations = self._restore_checkpoint()
        attempt = RunDir.failed_attempts(self.tdir)
        task = ChildTask(
            func=func,
            config=self.config,
            trial_id=self.tdir.name,
            trial_dir=self.tdir,
            attempt=attempt,
            cuda_devices=None,
            memory_bytes=self.plan.memory,
            reuse=self.plan.reuse_processes,
        )
        key = (self.ctx.target, self.ctx.base_dir, self.plan.memory)
        idle = _IDLE.pop("child", None)
        if idle is not None and idle[0] == key and idle[1].is_alive():
            _, self.process, self.conn = idle
            next_task(self.conn, task)
        else:
            if idle is not None:
                discard(idle[1], idle[2])
            # the child dies with the thread that forked it (PR_SET_PDEATHSIG), and Ray runs
            # each trial in a thread of its own: a reused child is forked from one that stays
            self.process, self.conn = fork_child(task, _forker() if task.reuse else None)
        self.key = key
        started = time.monotonic()
        try:
            done = self._watch(started, attempt)
            self.finished = True
        finally:
            self._stop_child()
            cap_log(self.tdir / TRIAL_LOG)
        self._finish(done)

    def _watch(self, started: float, attempt: int) -> tuple[Any, ...]:
        timeout = self.plan.timeout_s
        closed = False  # the child's end of the pipe is closed: it exited (or is exiting)
        while True:
            if closed:
                self.process.join(timeout=0.2)
            elif self.conn.poll(0.2):
                try:
                    message = self.conn.recv()
                except (EOFError, OSError):
                    message, closed = None, True
                if message is not None:
                    if message[0] == "report":
                        self._on_report(message[1], bool(message[2]))
                        continue
                    return tuple(message)
            cap_log(self.tdir / TRIAL_LOG, running=True)  # a trial that floods its output
            if not self.process.is_alive() and (closed or not self.conn.poll(0.05)):
                reason = died_before_returning(self.process.exitcode)
                self._error_file(attempt, reason, "")
                raise TrialFailed(reason)
            if timeout is not None and time.monotonic() - started > timeout:
                kill_group(self.process.pid, signal.SIGTERM)
                self.process.join(timeout=KILL_GRACE_S)
                _final(self.tdir, f"timeout: killed after {timeout:g} s", self.iterations)

    def _on_report(self, metrics: dict[str, Any], has_checkpoint: bool) -> None:
        self.iterations += 1
        self.metrics.update(metrics)
        if self.plan.scheduler == "pbt" and not has_checkpoint:
            _final(self.tdir, PBT_NEEDS_CHECKPOINTS, self.iterations)
        score = self.plan.search.score
        if score is not None:  # the report's own score; a report without one is not shown
            value = score.of(metrics)
            if value is not None:
                self._report({**self.metrics, SCORE: value}, checkpoint=has_checkpoint)
        elif all(
            is_finite_number(self.metrics[m]) for m in self.plan.directions if m in self.metrics
        ):
            self._report(dict(self.metrics), checkpoint=has_checkpoint)
        # else: a NaN/inf is never shown to Ray's scheduler or searcher (as on the Optuna
        # backend); the trial goes on, and fails if its final value is not finite
        with contextlib.suppress(BrokenPipeError, OSError):
            self.conn.send("continue")

    def _report(self, metrics: dict[str, Any], *, checkpoint: bool) -> None:
        from ray import tune

        out = {**metrics, ITERATIONS_KEY: self.iterations}
        self.forwarded = dict(metrics)
        src = self.tdir / CHECKPOINT
        if not checkpoint or not src.exists():
            tune.report(out)
            return
        # Ray copies the directory into the experiment's storage; a hard link (the trial
        # process replaces its file, never rewrites it) saves copying the checkpoint twice
        tmp = tempfile.mkdtemp(prefix=".ckpt-", dir=self.tdir)
        try:
            try:
                os.link(src, Path(tmp) / CHECKPOINT)
            except OSError:
                shutil.copy2(src, Path(tmp) / CHECKPOINT)
            (Path(tmp) / STATE_FILE).write_text(json.dumps({"iterations": self.iterations}))
            out[CHECKPOINT_KEY] = True
            tune.report(out, checkpoint=tune.Checkpoint.from_directory(tmp))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _restore_checkpoint(self) -> int:
        """Put Ray's checkpoint (a retry's own, a restored run's, or a PBT donor's) where the
        child's ``trial.checkpoint`` finds it; returns the iterations it had done."""
        from ray import tune

        target = self.tdir / CHECKPOINT
        target.unlink(missing_ok=True)
        ckpt = tune.get_checkpoint()
        if ckpt is None:
            return 0
        with ckpt.as_directory() as d:
            src = Path(d) / CHECKPOINT
            if src.exists():
                shutil.copy2(src, target)
            try:
                return int(json.loads((Path(d) / STATE_FILE).read_text())["iterations"])
            except (OSError, ValueError, KeyError, TypeError):
                return 0

    def _finish(self, done: tuple[Any, ...]) -> None:
        kind = done[0]
        if kind == "error":
            _, err_kind, message, trace = done
            attempt = RunDir.failed_attempts(self.tdir)
            self._error_file(attempt, message, trace)
            if err_kind == "oom":
                _final(self.tdir, message, self.iterations)
            raise TrialFailed(message)
        final = dict(done[1]) if len(done) > 1 and isinstance(done[1], dict) else {}
        metrics = {**self.metrics, **final}
        values = self.plan.search.final_values(metrics)  # (sets a score in metrics)
        if isinstance(values, str):
            _final(self.tdir, values, self.iterations)
        if metrics != self.forwarded:
            self._report(metrics, checkpoint=False)

    def _error_file(self, attempt: int, message: str, trace: str) -> None:
        with contextlib.suppress(OSError):
            RunDir.error_file(self.tdir, attempt).write_text(
                f"{message}\n\n{trace}", encoding="utf-8"
            )

    def _stop_child(self) -> None:
        """Keep a child that ended its trial and is ready for another (``reuse``); else let a
        child that is still running end cleanly (TrialStopped), then kill its group."""
        if self.process is None:
            return
        if not self.finished:  # Ray stopped the trial: it ends at its next report
            with contextlib.suppress(BrokenPipeError, OSError):
                self.conn.send("stop")
        if self._ready() and self.plan.reuse_processes:
            _IDLE["child"] = (self.key, self.process, self.conn)
            return
        if self.finished:  # it is exiting on its own: join wakes up as soon as it has
            self.process.join(timeout=STOP_GRACE_S)
        discard(self.process, self.conn)  # (a stopped trial had its grace period in _ready)

    def _ready(self) -> bool:
        """Wait (at most STOP_GRACE_S) for the trial's last message, if it is still to come,
        then for ``("ready",)``: True when the child is ready for another trial (it exits
        instead when the trial left a thread or a process behind)."""
        deadline = time.monotonic() + STOP_GRACE_S
        try:
            while self.conn.poll(max(deadline - time.monotonic(), 0.0)):
                message = self.conn.recv()
                if message == ("ready",):
                    return self.finished
                if message[0] in ("done", "stopped", "error"):
                    self.finished = True
                # a report sent before the child read "stop": it reads "stop" next
        except (EOFError, OSError):
            pass
        return False


@functools.cache
def _forker() -> ThreadPoolExecutor:
    """A thread that lives as long as this actor, to fork trial processes from."""
    return ThreadPoolExecutor(1, thread_name_prefix="sweepspec-fork")


sweepspec_trainable.__name__ = "sweepspec_trainable"
