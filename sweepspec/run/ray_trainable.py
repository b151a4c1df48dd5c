"""The worker side of the ray backend: the trainable and the run's exactly-once ledger file.
Light on purpose (Ray Tune's function API, no Optuna): every Ray worker imports it. The driver's
Ray objects (searcher, PBT, stopper, callback) are in :mod:`sweepspec.run.ray_driver`.

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
import math
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sweepspec.compile.ray_backend import is_finite_number
from sweepspec.results import TrialRecord
from sweepspec.run.child import ChildTask, discard, fork_child, kill_group, next_task
from sweepspec.run.ledger import Ledger
from sweepspec.suggest import did_you_mean

__all__ = [
    "CHECKPOINT_KEY",
    "LEDGER_FILE",
    "LedgerFile",
    "TrialContext",
    "TrialFailed",
    "active_values",
    "sweepspec_trainable",
]

LEDGER_FILE = "ledger.jsonl"
CHECKPOINT = "checkpoint.pkl"  # as in sweepspec.run.child
STATE_FILE = "sweepspec.json"  # beside the pickled state in a Ray checkpoint
FINAL_ERROR = "final_error.txt"
STOP_GRACE_S = 1.0  # Ray waits 2 s for a stopped function before it replaces the actor
KILL_GRACE_S = 2.0
ITERATIONS_KEY = "sweepspec_iterations"
CHECKPOINT_KEY = "sweepspec_checkpoint"  # in a result that comes with a checkpoint
FAILED_KEY = "sweepspec_failed"  # the last result of a trial that failed for good
PBT_NEEDS_CHECKPOINTS = "pbt needs checkpoints: pass checkpoint= to trial.report"


# -- the run's ledger file --------------------------------------------------------------


class LedgerFile:
    """``ledger.jsonl``: one JSON object a line, appended by the driver only.

    ``{"event": "start", "ray_id", "trial_id", "params"}`` when a trial first starts and
    ``{"event": "end", "ray_id", "trial_id", "state", "metrics", "params", "config",
    "iterations", "duration_s", "attempts", "error"}`` when it ends (fsynced), or
    ``{"event": "drop", "ray_id"}`` when a resume finds that a trial which had started but not
    ended is unknown to Ray's last snapshot (it is started over as a new trial). The first end
    of a Ray trial id is final: a trial that Ray runs again after a restore is never recorded
    twice. A torn last line (the driver was killed while writing) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in data.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "ray_id" in item:
                out.append(item)
        return out

    def ends(self) -> dict[str, dict[str, Any]]:
        """Terminal records by Ray trial id (the first one wins)."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.events():
            if e.get("event") == "end" and e["ray_id"] not in out:
                out[e["ray_id"]] = e
        return out

    def end_of(self, ray_id: str) -> dict[str, Any] | None:
        """The terminal record of one Ray trial id, or None: what a trainable checks when it
        starts. Only the lines that name ``ray_id`` are parsed (a substring scan), so the
        check stays cheap however long the ledger grows."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        needle = json.dumps(ray_id).encode()
        if needle not in data:
            return None
        for line in data.splitlines():
            if needle not in line:
                continue
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(item, dict)
                and item.get("ray_id") == ray_id
                and item.get("event") == "end"
            ):
                return item
        return None

    def append(self, item: dict[str, Any], *, sync: bool) -> None:
        line = json.dumps(item, default=str, allow_nan=True) + "\n"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(line)
            fh.flush()
            if sync:
                os.fsync(fh.fileno())

    def ledger(self) -> Ledger:
        """Fold the events into logical trials (display ids), as the Optuna ledger does."""
        ledger = Ledger()
        ids: dict[str, str] = {}
        for e in self.events():
            ray_id = e["ray_id"]
            tid = ids.setdefault(ray_id, _unique_id(str(e.get("trial_id", ray_id)), ray_id, ids))
            previous = ledger.records.get(tid)
            if previous is not None and previous.state != "RUNNING":
                continue
            if e.get("event") == "end":
                ledger.records[tid] = record_from(e, tid)
                ledger.in_flight.discard(tid)
            elif e.get("event") == "drop":
                ledger.records.pop(tid, None)
                ledger.in_flight.discard(tid)
            elif previous is None:
                params = dict(e.get("params") or {})
                ledger.records[tid] = TrialRecord(tid, "RUNNING", params=params)
                ledger.in_flight.add(tid)
        return ledger


def _unique_id(wanted: str, ray_id: str, ids: Mapping[str, str]) -> str:
    return ray_id if wanted in ids.values() else wanted


def record_from(e: Mapping[str, Any], tid: str) -> TrialRecord:
    return TrialRecord(
        trial_id=tid,
        state=str(e.get("state", "FAILED")),
        metrics=dict(e.get("metrics") or {}),
        params=dict(e.get("params") or {}),
        config=dict(e.get("config") or {}),
        iterations=int(e.get("iterations") or 0),
        duration_s=e.get("duration_s"),
        attempts=int(e.get("attempts") or 1),
        error=e.get("error"),
    )


# -- values and configs -----------------------------------------------------------------


def active_values(plan: Any, config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampled values of the parameters that are active in ``config`` (flat paths), in
    dependency order; a value for an inactive parameter (PBT may add one) is dropped."""
    space = plan.space
    values: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for p in space.params:
        if not space.is_active(p, context):
            continue
        if p.is_fixed:
            context[p.path] = p.fixed_value
        elif p.path in config:
            values[p.path] = config[p.path]
            context[p.path] = config[p.path]
    return values


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
    plan: Any  # RayPlan
    rundir: str
    cwd: str
    sys_path: tuple[str, ...]

    @property
    def ledger(self) -> LedgerFile:
        return LedgerFile(Path(self.rundir) / LEDGER_FILE)


_OBJECTIVES: dict[tuple[str, str], Any] = {}
#: This actor's idle trial process, kept for its next trial (``reuse_actors``): the objective
#: (target, base dir) it runs, its process and pipe. Forking one per trial cost ~14 ms here.
_IDLE: dict[str, Any] = {}


def _objective(ctx: TrialContext) -> Any:
    key = (ctx.target, ctx.base_dir)
    if key not in _OBJECTIVES:
        for entry in reversed(ctx.sys_path):
            if entry not in sys.path and os.path.isdir(entry):
                sys.path.insert(0, entry)
        from sweepspec.objective_loader import load_objective

        _OBJECTIVES[key] = load_objective(ctx.target, Path(ctx.base_dir))
    return _OBJECTIVES[key]


def sweepspec_trainable(config: dict[str, Any], ctx: TrialContext) -> None:
    """Run one trial attempt of the objective under Ray (see the module docstring)."""
    from ray import tune

    ray_id = tune.get_context().get_trial_id()
    plan = ctx.plan
    tdir = Path(ctx.rundir) / "trials" / ray_id
    tdir.mkdir(parents=True, exist_ok=True)
    if os.path.isdir(ctx.cwd):
        os.chdir(ctx.cwd)  # as on the Optuna backend: relative paths mean the launch directory
    try:
        recorded = ctx.ledger.end_of(ray_id)
        if recorded is not None:  # Ray runs it again after a restore: it already ended
            iterations = int(recorded.get("iterations") or 0)
            if recorded.get("state") == "FAILED":
                raise _FinalFailure(str(recorded.get("error") or "failed"), iterations)
            tune.report({**recorded.get("metrics", {}), ITERATIONS_KEY: iterations})
            return
        marker = tdir / FINAL_ERROR
        if marker.exists():
            raise _FinalFailure(marker.read_text(encoding="utf-8").strip() or "failed")
        values = active_values(plan, config)
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
        attempt = len(list(self.tdir.glob("error-*.txt")))
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
            if not self.process.is_alive() and (closed or not self.conn.poll(0.05)):
                code = self.process.exitcode
                how = (
                    f"killed by signal {signal.Signals(-code).name}"
                    if code and code < 0
                    else f"exited with code {code}"
                )
                self._error_file(attempt, f"the trial process {how} before returning", "")
                raise TrialFailed(f"the trial process {how} before returning")
            if timeout is not None and time.monotonic() - started > timeout:
                kill_group(self.process.pid, signal.SIGTERM)
                self.process.join(timeout=KILL_GRACE_S)
                _final(self.tdir, f"timeout: killed after {timeout:g} s", self.iterations)

    def _on_report(self, metrics: dict[str, Any], has_checkpoint: bool) -> None:
        self.iterations += 1
        self.metrics.update(metrics)
        if self.plan.scheduler == "pbt" and not has_checkpoint:
            _final(self.tdir, PBT_NEEDS_CHECKPOINTS, self.iterations)
        if all(
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
            attempt = len(list(self.tdir.glob("error-*.txt")))
            self._error_file(attempt, message, trace)
            if err_kind == "oom":
                _final(self.tdir, message, self.iterations)
            raise TrialFailed(message)
        final = dict(done[1]) if len(done) > 1 and isinstance(done[1], dict) else {}
        metrics = {**self.metrics, **final}
        names = list(self.plan.directions)
        if "__return__" in metrics and len(names) == 1 and names[0] not in metrics:
            metrics[names[0]] = metrics["__return__"]
        metrics.pop("__return__", None)
        for name in names:
            value = metrics.get(name)
            if value is None:
                hint = did_you_mean(name, metrics)
                _final(
                    self.tdir,
                    f"missing_metric: the trial did not report {name!r}{hint}",
                    self.iterations,
                )
            if not is_finite_number(value):
                _final(
                    self.tdir,
                    f"nan_metric: {name} = {value!r} is not a finite number",
                    self.iterations,
                )
        if metrics != self.forwarded:
            self._report(metrics, checkpoint=False)

    def _error_file(self, attempt: int, message: str, trace: str) -> None:
        with contextlib.suppress(OSError):
            (self.tdir / f"error-{attempt}.txt").write_text(
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


def json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = str(v)
        elif isinstance(v, int | float | str | bool) or v is None:
            out[k] = v
    return out
