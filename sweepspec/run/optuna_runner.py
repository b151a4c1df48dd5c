"""Run a compiled Optuna plan: one driver process owns the study (ask/tell); each trial runs
in a process forked from it (the objective's module is imported once, before the fork).

Exactly once: launching happens inside a cross-process gate (a file lock in the run directory),
which counts logical trials (finished + in flight, from every process on the study) before it
asks. Trials left RUNNING by a dead process (its lease is free) are failed and re-queued with
their params before anything new starts.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from sweepspec.compile.optuna_backend import OptunaPlan, decode_choice
from sweepspec.feasibility import MAX_REJECTIONS, too_many_rejections
from sweepspec.load import LoadedSpec
from sweepspec.run.child import (
    CHECKPOINT,
    ChildTask,
    discard,
    fork_child,
    kill_group,
    next_task,
)
from sweepspec.run.gate import LocalGate
from sweepspec.run.journal import journal_version
from sweepspec.run.lease import LEASE_SUFFIX, Lease, is_alive
from sweepspec.run.ledger import Ledger, tally
from sweepspec.run.rundir import RunDir
from sweepspec.run.stops import TrialStopRule, answers_needed, decide_report
from sweepspec.suggest import did_you_mean

__all__ = ["OptunaRunner", "RunOutcome"]

log = logging.getLogger("sweepspec")
KILL_GRACE_S = 2.0
RESULTS_EVERY_S = 5.0
PROGRESS_FILE = "checkpoint.json"  # beside checkpoint.pkl: the iterations it was taken at
CHECKPOINT_RATIO = 20.0  # a checkpoint is saved when at least 20x its cost has passed since
HOST = socket.gethostname()
#: RDB storages (several machines): a driver stamps ``heartbeat`` (``time.time()``) on its
#: running trials this often; another machine's RUNNING trial whose stamp is older than
#: HEARTBEAT_GRACE_S is an orphan (its driver died). Clocks must agree to well under the grace.
HEARTBEAT_S = 10.0
HEARTBEAT_GRACE_S = 120.0
HEARTBEAT_ATTR = "heartbeat"
LEASE_DIR_ATTR = "lease_dir"  # RDB: the workers/ directory holding the owner's lease
#: How often a running driver looks for trials orphaned by a dead driver.
RECOVER_EVERY_S = 10.0


@dataclass
class RunOutcome:
    """How a run ended."""

    ledger: Ledger
    reason: str
    exit_code: int = 0
    elapsed_s: float = 0.0


@dataclass
class _Running:
    trial: Any
    logical: str
    attempt: int
    params: dict[str, Any]
    config: dict[str, Any]
    process: Any
    conn: Connection
    started: float
    gpu_slot: int | None = None
    iterations: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    answer: str = "continue"
    killed: str | None = None
    kill_time: float = 0.0
    done: tuple[Any, ...] | None = None
    ready: bool = False  # a reused process said ("ready",) after the trial's end
    closed: bool = False  # the child's end of the pipe is closed


class OptunaRunner:
    """Drives one sweep on an Optuna study until its budget is used or it is stopped."""

    _ledger_memo: tuple[int, Ledger] | None = None  # (journal version, its ledger)

    def __init__(
        self,
        loaded: LoadedSpec,
        rundir: RunDir,
        plan: OptunaPlan,
        study: Any,
        func: Any,
        *,
        concurrency: int,
        gpu_slots: list[str] | None,
        progress: Any,
        elapsed_before: float = 0.0,
        gate: Any = None,
        results_writer: Callable[[Ledger], object] | None = None,
    ) -> None:
        self.loaded = loaded
        self.spec = loaded.spec
        self.rundir = rundir
        self.plan = plan
        self.study = study
        self.func = func
        self.concurrency = concurrency
        self.gpu_slots = gpu_slots or []
        self.progress = progress
        self.elapsed_before = elapsed_before
        self.running: dict[int, _Running] = {}
        #: trial processes waiting for their next trial (``reuse_processes``): (the devices
        #: they see, process, pipe)
        self.idle: list[tuple[str | None, Any, Connection]] = []
        self.reuse = self.spec.backend.reuse_processes
        self.stop_rule = TrialStopRule.from_spec(self.spec, plan.max_t)
        self.answers = answers_needed(plan, self.stop_rule)
        self.lease = Lease.acquire(rundir.workers)
        self.owner = f"{HOST}:{self.lease.owner_id}"
        # launches are serialized by this gate across every process on the study
        # (sweepspec.run.gate: a flock, plus a PostgreSQL advisory lock for a postgres storage)
        self.gate = gate if gate is not None else LocalGate(rundir.gate, timeout=120)
        self.heartbeats = bool(self.spec.storage_is_url)
        self._last_beat = self._last_recover = time.monotonic()
        self.started = time.monotonic()
        self.stopping: str | None = None
        self.best: float | None = None
        self.results_writer = results_writer
        self._written = (-1, time.monotonic())  # (finished count, when) of the last write

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> RunOutcome:
        try:
            with self.gate:
                self._recover_orphans()
            while True:
                self._tick()
                ledger = self._ledger()
                self._check_stops(ledger)
                if not self.running and (self.stopping or self._all_done(ledger)):
                    break
                while self.stopping is None and len(self.running) < self.concurrency:
                    if not self._launch():
                        break
                if not self.running:
                    if self._all_done(self._ledger()) or self.stopping:
                        continue
                    time.sleep(0.2)  # others on the study hold the remaining slots
                    continue
                self._poll(timeout=0.25)
                ledger = self._ledger()
                self.progress.update(ledger, self._elapsed(), len(self.running))
                self._write_results(ledger)
        except BaseException:
            # Ctrl-C, or a failure of the driver itself: the trials in flight are stopped and
            # queued to run again, so the next run loses nothing
            self._interrupt()
            raise
        finally:
            self._discard_idle()
            self.lease.release()
        ledger = self._ledger()
        reason = self.stopping or "done"
        code = 1 if reason.startswith("max_failed") else 0
        return RunOutcome(ledger, reason, code, self._elapsed())

    def _write_results(self, ledger: Ledger) -> None:
        """Keep trials.csv/best.yaml/summary.json current (at most every few seconds), so a
        killed run leaves them at most that stale."""
        done, when = self._written
        if self.results_writer is None or ledger.finished == done:
            return
        if time.monotonic() - when < RESULTS_EVERY_S and ledger.finished < self.plan.total_trials:
            return
        self.results_writer(ledger)
        self._written = (ledger.finished, time.monotonic())

    def _elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started

    def _ledger(self) -> Ledger:
        trials = self.study.get_trials(deepcopy=False)
        version = journal_version(self.study._storage)  # several calls a loop: tally once
        if version is not None and self._ledger_memo and self._ledger_memo[0] == version:
            return self._ledger_memo[1]
        ledger = tally(trials, self._decode_params)
        self._ledger_memo = (version, ledger) if version is not None else None
        return ledger

    def _all_done(self, ledger: Ledger) -> bool:
        return ledger.finished >= self.plan.total_trials and not ledger.in_flight

    def _check_stops(self, ledger: Ledger) -> None:
        if self.stopping:
            return
        sweep = self.spec.stop.sweep
        if sweep.time_budget is not None and self._elapsed() >= sweep.time_budget:
            self.stopping = "time_budget"
        elif sweep.target and self._target_reached(ledger, sweep.target):
            self.stopping = "target"
        elif (
            self.spec.trials.max_failed is not None and ledger.failed >= self.spec.trials.max_failed
        ):
            self.stopping = f"max_failed: {ledger.failed} trials failed"

    def _target_reached(self, ledger: Ledger, target: dict[str, float]) -> bool:
        directions = self.spec.objective.directions
        for r in ledger.records.values():
            if r.state != "COMPLETE":
                continue
            ok = all(
                isinstance(r.metrics.get(m), int | float)
                and (r.metrics[m] >= v if directions.get(m, "max") == "max" else r.metrics[m] <= v)
                for m, v in target.items()
            )
            if ok:
                return True
        return False

    # -- launching ----------------------------------------------------------------------

    def _launch(self) -> bool:
        with self.gate:
            ledger = self._ledger()
            waiting = any(_is_waiting(t) for t in self.study.get_trials(deepcopy=False))
            slots = self.plan.total_trials - ledger.finished - len(ledger.in_flight)
            if not waiting and slots <= 0:
                return False
            if not waiting and self.plan.grid_points:
                self._enqueue_grid_point(ledger)
            sampled = self._ask_feasible()
            if sampled is None:
                return False
            trial, values = sampled
            logical = str(trial.user_attrs.get("logical", trial.number))
            attempt = int(trial.user_attrs.get("attempt", 0))
            trial.set_user_attr("logical", logical)
            trial.set_user_attr("attempt", attempt)
            trial.set_user_attr("owner", self.owner)
            if self.heartbeats:  # RDB: other run directories, other machines share the study
                trial.set_user_attr(LEASE_DIR_ATTR, str(self.rundir.workers))
                trial.set_user_attr(HEARTBEAT_ATTR, time.time())
        self._start(trial, logical, attempt, values)
        return True

    def _enqueue_grid_point(self, ledger: Ledger) -> None:
        counts = [0] * len(self.plan.grid_points)
        keys = [tuple(sorted(p.items(), key=str)) for p in self.plan.grid_points]
        for r in ledger.records.values():
            key = tuple(sorted(((k, r.params.get(k)) for k, _ in keys[0]), key=str))
            if key in keys:
                counts[keys.index(key)] += 1
        point = self.plan.grid_points[counts.index(min(counts))]
        encoded = {
            k: self.plan.suggest[k].kwargs["choices"][self.plan.suggest[k].options.index(v)]
            for k, v in point.items()
        }
        self.study.enqueue_trial(encoded, user_attrs={"grid": True})

    def _ask_feasible(self) -> tuple[Any, dict[str, Any]] | None:
        import optuna

        for _ in range(MAX_REJECTIONS):
            trial = self.study.ask()
            values = self._sample(trial)
            violated = self.plan.space.violated({**self.plan.space.fixed_values(values), **values})
            if not violated:
                return trial, values
            trial.set_user_attr("rejected", [int(i) for i in violated])
            trial.set_constraint("sweepspec", float(len(violated)))
            worst = self._worst_values()
            if worst is None:
                self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
            else:
                self.study.tell(trial, worst)
        raise too_many_rejections()

    def _worst_values(self) -> list[float] | None:
        import optuna

        done = [
            t
            for t in self.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            if not t.user_attrs.get("rejected") and t.values
        ]
        if not done:
            return None
        worst = []
        for i, direction in enumerate(self.plan.directions):
            vals = [t.values[i] for t in done]
            worst.append(min(vals) if direction == "maximize" else max(vals))
        return worst

    def _sample(self, trial: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        context: dict[str, Any] = {}
        for p in self.plan.space.params:
            if not self.plan.space.is_active(p, context):
                continue
            if p.is_fixed:
                context[p.path] = p.fixed_value
                continue
            s = self.plan.suggest[p.path]
            if s.method == "float":
                v: Any = trial.suggest_float(p.path, **s.kwargs)
            elif s.method == "int":
                v = trial.suggest_int(p.path, **s.kwargs)
            else:
                v = decode_choice(trial.suggest_categorical(p.path, s.kwargs["choices"]), s.options)
            values[p.path] = v
            context[p.path] = v
        return values

    def _decode_params(self, params: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for k, v in params.items():
            s = self.plan.suggest.get(k)
            out[k] = decode_choice(v, s.options) if s is not None and s.options else v
        return out

    def _start(self, trial: Any, logical: str, attempt: int, values: dict[str, Any]) -> None:
        config = self.plan.space.build_config(values)
        slot = self._free_gpu_slot()
        task = ChildTask(
            func=self.func,
            config=config,
            trial_id=logical,
            trial_dir=self.rundir.trial_dir(logical),
            attempt=attempt,
            cuda_devices=self.gpu_slots[slot] if slot is not None else None,
            memory_bytes=self.spec.resources.per_trial.memory,
            answers=self.answers,
            checkpoint_ratio=CHECKPOINT_RATIO,
            reuse=self.reuse,
        )
        process, parent = self._process_for(task)
        self.running[trial.number] = _Running(
            trial,
            logical,
            attempt,
            values,
            config,
            process,
            parent,
            time.monotonic(),
            slot,
            iterations=self._resumed_iterations(task.trial_dir),
        )

    def _process_for(self, task: ChildTask) -> tuple[Any, Connection]:
        """An idle trial process that sees the same devices (sent ``task``), or a new one
        forked from this driver."""
        for entry in [e for e in self.idle if not e[1].is_alive()]:
            self.idle.remove(entry)
            discard(entry[1], entry[2])
        for i, (devices, process, conn) in enumerate(self.idle):
            if devices == task.cuda_devices:
                del self.idle[i]
                try:
                    next_task(conn, task)
                except OSError:  # it died meanwhile
                    discard(process, conn)
                    break
                return process, conn
        return fork_child(task)

    def _discard_idle(self) -> None:
        while self.idle:
            _, process, conn = self.idle.pop()
            discard(process, conn)

    @staticmethod
    def _resumed_iterations(trial_dir: Path) -> int:
        """A trial that resumes from its checkpoint continues its iteration count (so ASHA,
        max_t and stop.trial see the steps it already made)."""
        if not (trial_dir / CHECKPOINT).exists():
            return 0
        try:
            data = json.loads((trial_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
            return max(0, int(data["iterations"]))
        except (OSError, ValueError, KeyError, TypeError):
            return 0

    def _free_gpu_slot(self) -> int | None:
        if not self.gpu_slots:
            return None
        used = {r.gpu_slot for r in self.running.values()}
        return next(i for i in range(len(self.gpu_slots)) if i not in used)

    # -- watching -----------------------------------------------------------------------

    def _poll(self, timeout: float) -> None:
        # a child's pipe is watched until its trial's end (and, when reused, its "ready")
        conns = {r.conn: r for r in self.running.values() if self._listening(r)}
        sentinels = {r.process.sentinel: r for r in self.running.values()}
        ready = wait([*conns, *sentinels], timeout=timeout)
        for obj in ready:
            if obj in conns:
                self._receive(conns[obj])
        for r in list(self.running.values()):
            if self._listening(r) and r.conn.poll():
                self._receive(r)
            if r.ready:
                self._finish(r, keep=True)
            elif not r.process.is_alive():
                r.process.join()
                self._finish(r)
        self._enforce_timeouts()

    def _listening(self, r: _Running) -> bool:
        return not r.closed and (r.done is None or (self.reuse and not r.ready))

    def _receive(self, r: _Running) -> None:
        try:
            while r.conn.poll():
                message = r.conn.recv()
                if message[0] == "report":
                    self._on_report(r, message[1])
                    if len(message) > 2 and message[2]:
                        self._note_checkpoint(r)
                elif message[0] == "ready":
                    r.ready = r.done is not None and r.killed is None
                    return
                else:
                    r.done = message
        except (EOFError, OSError):
            r.closed = True

    def _on_report(self, r: _Running, metrics: dict[str, Any]) -> None:
        r.iterations += 1
        r.metrics.update(metrics)
        now = time.monotonic() - r.started
        answer = decide_report(
            self.plan, self.stop_rule, r.trial, r.iterations, now, r.metrics, metrics
        )
        r.answer = answer
        if self.answers:
            with contextlib.suppress(BrokenPipeError, OSError):
                r.conn.send(answer)

    def _note_checkpoint(self, r: _Running) -> None:
        path = self.rundir.trial_dir(r.logical) / PROGRESS_FILE
        with contextlib.suppress(OSError):
            path.write_text(json.dumps({"iterations": r.iterations}), encoding="utf-8")

    def _enforce_timeouts(self) -> None:
        limit = self.spec.trials.timeout
        now = time.monotonic()
        for r in self.running.values():
            if r.killed is None and limit is not None and now - r.started > limit:
                r.killed = "timeout"
                r.kill_time = now
                kill_group(r.process.pid, signal.SIGTERM)
            elif r.killed and now - r.kill_time > KILL_GRACE_S and r.process.is_alive():
                kill_group(r.process.pid, signal.SIGKILL)

    # -- finishing ----------------------------------------------------------------------

    def _finish(self, r: _Running, keep: bool = False) -> None:
        """Record a trial's end; its process waits for the next trial (``keep``: it ended
        cleanly and left nothing running) or is killed with anything the trial started."""
        import optuna

        del self.running[r.trial.number]
        if keep:
            devices = self.gpu_slots[r.gpu_slot] if r.gpu_slot is not None else None
            self.idle.append((devices, r.process, r.conn))
            while len(self.idle) > self.concurrency:  # left by other GPU slots: the oldest go
                _, process, conn = self.idle.pop(0)
                discard(process, conn)
        else:
            discard(r.process, r.conn)
        duration = time.monotonic() - r.started
        state, values, error, retry = self._outcome(r)
        t = r.trial
        t.set_user_attr("metrics", _json_metrics(r.metrics))
        t.set_user_attr("iterations", r.iterations)
        t.set_user_attr("duration_s", round(duration, 3))
        t.set_user_attr("config", r.config)
        if error:
            t.set_user_attr("error", error)
            self._write_error(r, error)
        try:
            self._tell(t, r, state, values, retry)
        except optuna.exceptions.UpdateFinishedTrialError:
            # another worker declared this driver dead (no heartbeat for too long) and re-ran
            # the trial: that run's result counts, this one is dropped
            log.warning("trial %s was re-run by another worker; this result is dropped", r.logical)
            return
        self.progress.trial_done(r.logical, state, r.metrics, error)

    def _tell(
        self, t: Any, r: _Running, state: str, values: list[float] | None, retry: bool
    ) -> None:
        import optuna

        if state == "FAIL":
            if retry and r.attempt < self.spec.trials.max_retries:
                self.study.enqueue_trial(
                    t.params, user_attrs={"logical": r.logical, "attempt": r.attempt + 1}
                )
            else:
                t.set_user_attr("final", True)
            self.study.tell(t, state=optuna.trial.TrialState.FAIL)
        elif state == "PRUNED":
            self.study.tell(t, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(t, values)

    def _outcome(self, r: _Running) -> tuple[str, list[float] | None, str | None, bool]:
        """(state, values, error, retriable)."""
        if r.killed == "timeout":
            return "FAIL", None, f"timeout: killed after {self.spec.trials.timeout:g} s", False
        if r.done is None:
            code = r.process.exitcode
            how = (
                f"killed by signal {signal.Signals(-code).name}"
                if code and code < 0
                else f"exited with code {code}"
            )
            return "FAIL", None, f"the trial process {how} before returning", True
        kind = r.done[0]
        if kind == "error":
            return "FAIL", None, r.done[2], r.done[1] != "oom"
        if kind == "stopped" and r.answer == "prune":
            return "PRUNED", None, None, False
        metrics = dict(r.done[1]) if len(r.done) > 1 else {}
        r.metrics.update(metrics)
        names = self.plan.metric_names
        if "__return__" in r.metrics and len(names) == 1 and names[0] not in r.metrics:
            r.metrics[names[0]] = r.metrics["__return__"]
        r.metrics.pop("__return__", None)
        values = []
        for name in names:
            value = r.metrics.get(name)
            if value is None:
                hint = did_you_mean(name, r.metrics)
                return (
                    "FAIL",
                    None,
                    f"missing_metric: the trial did not report {name!r}{hint}",
                    False,
                )
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                return "FAIL", None, f"nan_metric: {name} = {value!r} is not a finite number", False
            values.append(float(value))
        return "COMPLETE", values, None, False

    def _write_error(self, r: _Running, error: str) -> None:
        path = self.rundir.trial_dir(r.logical) / f"error-{r.attempt}.txt"
        trace = r.done[3] if r.done and r.done[0] == "error" else ""
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{error}\n\n{trace}", encoding="utf-8")
        except OSError:
            pass

    # -- recovery -----------------------------------------------------------------------

    def _recover_orphans(self) -> None:
        """Fail and re-queue trials left RUNNING by a process that died (lease free)."""
        import optuna

        trials = self.study.get_trials(deepcopy=False)
        requeued = {int(t.user_attrs["requeue_of"]) for t in trials if "requeue_of" in t.user_attrs}
        for t in trials:
            if t.state != optuna.trial.TrialState.RUNNING or self._owner_alive(t):
                continue
            if t.number not in requeued and not t.user_attrs.get("rejected"):
                attrs = {
                    "logical": str(t.user_attrs.get("logical", t.number)),
                    "attempt": int(t.user_attrs.get("attempt", 0)),
                    "requeue_of": t.number,
                }
                self.study.enqueue_trial(t.params, user_attrs=attrs)
            self.study._storage.set_trial_user_attr(t._trial_id, "orphaned", True)
            self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            log.info("re-queued trial %s left running by a dead process", t.number)

    def _owner_alive(self, t: Any) -> bool:
        owner = t.user_attrs.get("owner")
        if not owner:
            return False  # asked but never started: only under the gate, so its asker died
        host, _, lease_id = str(owner).partition(":")
        leases = Path(t.user_attrs.get(LEASE_DIR_ATTR) or self.rundir.workers)
        if host == HOST and (leases / f"{lease_id}{LEASE_SUFFIX}").exists():
            return is_alive(leases, lease_id)  # a driver on this machine: its flock decides
        if not self.heartbeats:
            return host != HOST  # a journal is not shared across machines
        # RDB: another machine (or a lease released by a driver that crashed): the heartbeat
        return heartbeat_fresh(t, time.time())

    def _tick(self) -> None:
        """Every few seconds: stamp our running trials' heartbeats (RDB storage) and re-queue
        trials whose driver died meanwhile (else the budget waits for them forever)."""
        now = time.monotonic()
        if self.heartbeats and now - self._last_beat >= HEARTBEAT_S:
            self._last_beat = now
            self._beat()
        if now - self._last_recover >= RECOVER_EVERY_S:
            self._last_recover = now
            with self.gate:
                self._recover_orphans()

    def _beat(self) -> None:
        import optuna

        stamp = time.time()
        for r in list(self.running.values()):
            try:
                r.trial.set_user_attr(HEARTBEAT_ATTR, stamp)
            except optuna.exceptions.UpdateFinishedTrialError:
                log.warning(
                    "trial %s was failed by another driver (no heartbeat for %g s)",
                    r.trial.number,
                    HEARTBEAT_GRACE_S,
                )

    def _interrupt(self) -> None:
        """Ctrl-C: stop the trials in flight and queue them to run again next time."""
        import optuna

        self._discard_idle()
        for r in list(self.running.values()):
            discard(r.process, r.conn)
            try:
                self.study.enqueue_trial(
                    r.trial.params,
                    user_attrs={
                        "logical": r.logical,
                        "attempt": r.attempt,
                        "requeue_of": r.trial.number,
                    },
                )
                r.trial.set_user_attr("interrupted", True)
                self.study.tell(r.trial, state=optuna.trial.TrialState.FAIL)
            except Exception:  # best effort: the next run recovers orphans anyway
                log.debug("could not re-queue trial %s", r.trial.number, exc_info=True)
        self.running.clear()


def heartbeat_fresh(t: Any, now: float, grace: float = HEARTBEAT_GRACE_S) -> bool:
    """Whether a RUNNING trial's driver stamped it within ``grace`` seconds of ``now`` (its
    start time stands in for a trial that has no stamp yet)."""
    stamp = t.user_attrs.get(HEARTBEAT_ATTR)
    if not isinstance(stamp, int | float):
        start = getattr(t, "datetime_start", None)
        stamp = start.timestamp() if start is not None else 0.0
    return now - float(stamp) <= grace


def _is_waiting(t: Any) -> bool:
    return str(t.state.name) == "WAITING"


def _json_metrics(metrics: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = str(v)
        elif isinstance(v, int | float | str | bool) or v is None:
            out[k] = v
    return out


_ = Path
