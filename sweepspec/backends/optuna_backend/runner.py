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
import signal
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepspec.backends.optuna_backend.compile import OptunaPlan
from sweepspec.backends.optuna_backend.gate import LocalGate, PgAdvisoryGate
from sweepspec.backends.optuna_backend.journal import synced_journal_version, trials_from
from sweepspec.backends.optuna_backend.lease import LEASE_SUFFIX, Lease, is_alive
from sweepspec.backends.optuna_backend.promotion import Paused, RungTable
from sweepspec.backends.optuna_backend.reports import Answer, Reports
from sweepspec.backends.optuna_backend.tally import PAUSED_ATTR, Tally
from sweepspec.errors import DISK_FULL_HINT, Problem, SweepspecError
from sweepspec.records import TERMINAL, is_finite_number, json_metrics
from sweepspec.run.child import (
    DISK_FULL,
    ChildTask,
    died_before_returning,
    discard,
    fork_child,
    kill_group,
    next_task,
)
from sweepspec.run.crash import crash_point
from sweepspec.run.history import append_report
from sweepspec.run.ledger import Ledger
from sweepspec.run.rundir import CHECKPOINT, CHECKPOINT_PROGRESS, TRIAL_LOG, RunDir
from sweepspec.run.session import ProgressSink, RunOutcome, Session
from sweepspec.run.trial_log import cap_log
from sweepspec.search.asker import FeasibleAsker
from sweepspec.search.grid import GridCounter
from sweepspec.search.params import decode_params
from sweepspec.search.stops import target_reached

if TYPE_CHECKING:
    import optuna

__all__ = ["OptunaRunner", "heartbeat_fresh"]

log = logging.getLogger("sweepspec")
KILL_GRACE_S = 2.0
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
class _Running:
    trial: optuna.Trial
    logical: str
    attempt: int
    params: dict[str, Any]
    config: dict[str, Any]
    process: BaseProcess
    conn: Connection
    started: float
    gpu_slot: int | None = None
    iterations: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    answer: Answer = "continue"
    killed: str | None = None
    kill_time: float = 0.0
    done: tuple[Any, ...] | None = None
    ready: bool = False  # a reused process said ("ready",) after the trial's end
    #: seconds the logical trial ran before this attempt (promotion-based ASHA: it paused)
    prior_s: float = 0.0
    closed: bool = False  # the child's end of the pipe is closed


class OptunaRunner:
    """Drives one sweep on an Optuna study until its budget is used or it is stopped."""

    _ledger_memo: tuple[int, Ledger] | None = None  # (journal version, its ledger)
    #: how far the target check has read the ledger's COMPLETE records (Records.completed_since)
    _target_read: tuple[int, int] = (-1, 0)
    #: the grid points' counts so far, and the trials counted in them
    _grid: tuple[GridCounter, set[str]] | None = None
    #: how far the worst values have read the COMPLETE records, and those values
    _worst_read: tuple[int, int] = (-1, 0)
    _worst: list[float] | None = None

    def __init__(
        self,
        session: Session,
        plan: OptunaPlan,
        study: optuna.Study,
        func: Callable[..., Any],
        *,
        concurrency: int,
        gpu_slots: list[str] | None,
        progress: ProgressSink | None,
        gate: LocalGate | PgAdvisoryGate | None = None,
    ) -> None:
        self.session = session
        self.spec = session.loaded.spec
        self.rundir: RunDir = session.rundir
        self.plan = plan
        self.study = study
        self.asker = FeasibleAsker(plan.search, study, worst=self._worst_values)
        self.func = func
        self.concurrency = concurrency
        self.gpu_slots = gpu_slots or []
        self.progress = progress
        self.running: dict[int, _Running] = {}
        #: trial processes waiting for their next trial (``reuse_processes``): (the devices
        #: they see, process, pipe)
        self.idle: list[tuple[str | None, BaseProcess, Connection]] = []
        self.reuse = self.spec.backend.reuse_processes
        self.reports = Reports(plan)
        self.answers = self.reports.answers_needed
        self.lease = Lease.acquire(self.rundir.workers)
        self.owner = f"{HOST}:{self.lease.owner_id}"
        # launches are serialized by this gate across every process on the study (gate.py: a
        # flock, plus a PostgreSQL advisory lock for a postgres storage)
        self.gate = gate if gate is not None else LocalGate(self.rundir.gate, timeout=120)
        self.heartbeats = bool(self.spec.storage_is_url)
        self._tally = Tally(lambda params: decode_params(self.plan.search.suggest, params))
        self._last_beat = self._last_recover = time.monotonic()
        self.stopping: str | None = None
        self.concurrency_note = {"concurrency": concurrency}

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
                if self.progress is not None:
                    self.progress.update(ledger, self._elapsed(), len(self.running))
                self.session.update(ledger, self.concurrency_note, total=self.plan.total_trials)
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

    def _elapsed(self) -> float:
        return self.session.elapsed()

    def ledger(self) -> Ledger:
        """The run's trials as they stand in the study (all processes on it)."""
        return self._ledger()

    def _ledger(self) -> Ledger:
        storage = self.study._storage
        version = synced_journal_version(storage)  # several calls a loop: tally once
        if version is not None and self._ledger_memo and self._ledger_memo[0] == version:
            return self._ledger_memo[1]
        study_id = self.study._study_id
        ledger = self._tally.update(lambda start: trials_from(storage, study_id, start))
        self._ledger_memo = (version, ledger) if version is not None else None
        return ledger

    def _all_done(self, ledger: Ledger) -> bool:
        return (
            ledger.finished >= self.plan.total_trials
            and not ledger.in_flight
            and self._promotable() is None
        )

    def _promotable(self) -> Paused | None:
        """Promotion-based ASHA: the paused trial that has earned promotion, if any."""
        if not self.plan.promoting or self.stopping is not None:
            return None
        return RungTable.of_plan(self.study.get_trials(deepcopy=False), self.plan).promotable()

    def _promote(self) -> bool:
        """Queue the paused trial that has earned promotion (under the gate), if any: it runs
        on from its checkpoint as the next attempt of its logical trial."""
        paused = self._promotable()
        if paused is None:
            return False
        self.study.enqueue_trial(
            paused.params,
            user_attrs={
                "logical": paused.logical,
                "attempt": paused.attempt,
                "prior_s": paused.ran_s,
                "promoted_to": paused.rung + 1,
            },
        )
        log.info("promoted trial %s past rung %d", paused.logical, paused.rung)
        return True

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
        """Whether a COMPLETE trial reached ``target``: only the trials completed since the
        last check are read (a finished trial never changes)."""
        records = ledger.records
        new, self._target_read, _ = records.completed_since(self._target_read)
        directions = self.spec.objective.directions
        return any(target_reached(records[k].metrics, target, directions) for k in new)

    def _worst_values(self) -> list[float] | None:
        """The worst value of each objective among the COMPLETE trials (what a rejected
        proposal is told; None before any): each trial read once, as it completes."""
        records = self._ledger().records
        new, self._worst_read, anew = records.completed_since(self._worst_read)
        worst = None if anew else self._worst
        names = self.plan.search.metric_names
        maximize = [d == "maximize" for d in self.plan.search.directions]
        for key in new:
            metrics = records[key].metrics
            numbers = [float(v) for v in (metrics.get(n) for n in names) if is_finite_number(v)]
            if len(numbers) != len(names):
                continue
            worst = numbers if worst is None else [
                min(w, v) if up else max(w, v)
                for w, v, up in zip(worst, numbers, maximize, strict=True)
            ]  # fmt: skip
        self._worst = worst
        return worst

    def _grid_counts(self, ledger: Ledger) -> GridCounter:
        """How often each grid point has been run or is running: a finished trial is counted
        once (it never changes; all anew only when one left the ledger), the few in flight
        every time (another worker's may still be getting its params)."""
        records = ledger.records
        if self._grid is None or not self._grid[1] <= records.keys():
            self._grid = (GridCounter(self.plan.search.grid_points), set())
        finished, counted = self._grid
        for key in records.keys() - counted:
            record = records[key]
            if record.state in TERMINAL:
                finished.add(record.params)
                counted.add(key)
        grid = finished.copy()
        for key in records.keys() - counted:
            grid.add(records[key].params)
        return grid

    # -- launching ----------------------------------------------------------------------

    def _launch(self) -> bool:
        with self.gate:
            ledger = self._ledger()
            waiting = ledger.waiting > 0 or self._promote()
            slots = self.plan.total_trials - ledger.finished - len(ledger.in_flight)
            if not waiting and slots <= 0:
                return False
            grid = self._grid_counts(ledger) if self.plan.search.grid_points else None
            asked = self.asker.ask(grid, waiting=waiting)  # (the ledger knows: no scan)
            crash_point("after_ask")
            trial = asked.trial
            logical = str(trial.user_attrs.get("logical", _next_id(ledger)))
            attempt = int(trial.user_attrs.get("attempt", 0))
            prior_s = float(trial.user_attrs.get("prior_s", 0.0))
            trial.set_user_attr("logical", logical)
            trial.set_user_attr("attempt", attempt)
            trial.set_user_attr("owner", self.owner)
            if self.heartbeats:  # RDB: other run directories, other machines share the study
                trial.set_user_attr(LEASE_DIR_ATTR, str(self.rundir.workers))
                trial.set_user_attr(HEARTBEAT_ATTR, time.time())
        self._start(trial, logical, attempt, asked.values, prior_s)
        return True

    def _start(
        self,
        trial: optuna.Trial,
        logical: str,
        attempt: int,
        values: dict[str, Any],
        prior_s: float = 0.0,
    ) -> None:
        config = self.plan.search.space.build_config(values)
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
            prior_s=prior_s,
        )

    def _process_for(self, task: ChildTask) -> tuple[BaseProcess, Connection]:
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
            data = json.loads((trial_dir / CHECKPOINT_PROGRESS).read_text(encoding="utf-8"))
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
        for r in self.running.values():  # a trial that floods its output
            cap_log(self.rundir.trial_dir(r.logical) / TRIAL_LOG, running=True)

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
                elif message[0] == "saved":  # the checkpoint of a pausing trial's report
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
        now = r.prior_s + time.monotonic() - r.started  # (promoted: since its first run)
        scored = self.plan.search.scored(metrics)  # with objective.score: the report's score
        append_report(self.rundir, r.logical, r.iterations, now, scored, r.attempt)
        crash_point("after_report")
        answer = self.reports.decide(r.trial, r.iterations, now, r.metrics, metrics, r.logical)
        r.answer = answer
        if self.answers:
            with contextlib.suppress(BrokenPipeError, OSError):
                r.conn.send(answer)

    def _note_checkpoint(self, r: _Running) -> None:
        path = self.rundir.trial_dir(r.logical) / CHECKPOINT_PROGRESS
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

        if r.done and r.done[0] == "error" and r.done[1] == DISK_FULL:
            # not the trial's fault: the run stops, and this trial, with those in flight, is
            # queued to run again (``_interrupt``) once there is room
            raise SweepspecError(
                Problem(f"trial {r.logical}: {r.done[2]}; {DISK_FULL_HINT}", code="disk-full")
            )
        del self.running[r.trial.number]
        cap_log(self.rundir.trial_dir(r.logical) / TRIAL_LOG)
        if keep:
            devices = self.gpu_slots[r.gpu_slot] if r.gpu_slot is not None else None
            self.idle.append((devices, r.process, r.conn))
            while len(self.idle) > self.concurrency:  # left by other GPU slots: the oldest go
                _, process, conn = self.idle.pop(0)
                discard(process, conn)
        else:
            discard(r.process, r.conn)
        duration = r.prior_s + time.monotonic() - r.started  # (a promoted trial: every run)
        try:
            state, values, error, retry = self._outcome(r)
        except Exception as exc:  # what the trial returned cannot be read: the trial fails
            state, values, retry = "FAIL", None, False
            error = f"the trial's results could not be recorded: {type(exc).__name__}: {exc}"
        t = r.trial
        t.set_user_attr("metrics", json_metrics(self.plan.search.scored(r.metrics)))
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
        if self.progress is not None:
            self.progress.trial_done(r.logical, state, r.metrics, error)
        if state == "PAUSED" and not (self.rundir.trial_dir(r.logical) / CHECKPOINT).exists():
            log.warning(
                "trial %s paused at a rung without a checkpoint (trial.report(..., "
                "checkpoint=...)): if promoted, it starts over from its first step",
                r.logical,
            )

    def _tell(
        self, t: optuna.Trial, r: _Running, state: str, values: list[float] | None, retry: bool
    ) -> None:
        import optuna

        if state == "FAIL":
            if retry and r.attempt < self.spec.trials.max_retries:
                attrs = {"logical": r.logical, "attempt": r.attempt + 1, "prior_s": r.prior_s}
                self.study.enqueue_trial(t.params, user_attrs=attrs)
            else:
                t.set_user_attr("final", True)
            self.study.tell(t, state=optuna.trial.TrialState.FAIL)
        elif state == "PRUNED":
            self.study.tell(t, state=optuna.trial.TrialState.PRUNED)
        elif state == "PAUSED":  # pruned for the searcher, until it is promoted (promotion.py)
            t.set_user_attr(PAUSED_ATTR, True)
            self.study.tell(t, state=optuna.trial.TrialState.PRUNED)
        else:
            self.study.tell(t, values)

    def _outcome(self, r: _Running) -> tuple[str, list[float] | None, str | None, bool]:
        """(state, values, error, retriable)."""
        if r.killed == "timeout":
            return "FAIL", None, f"timeout: killed after {self.spec.trials.timeout:g} s", False
        if r.done is None:
            return "FAIL", None, died_before_returning(r.process.exitcode), True
        kind = r.done[0]
        if kind == "error":
            return "FAIL", None, r.done[2], r.done[1] != "oom"
        if kind == "stopped" and r.answer == "prune":
            return "PRUNED", None, None, False
        if kind == "stopped" and r.answer == "pause":
            return "PAUSED", None, None, False
        metrics = dict(r.done[1]) if len(r.done) > 1 else {}
        r.metrics.update(metrics)
        values = self.plan.search.final_values(r.metrics)
        if isinstance(values, str):
            return "FAIL", None, values, False
        return "COMPLETE", values, None, False

    def _write_error(self, r: _Running, error: str) -> None:
        path = RunDir.error_file(self.rundir.trial_dir(r.logical), r.attempt)
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
                attrs: dict[str, Any] = {
                    "attempt": int(t.user_attrs.get("attempt", 0)),
                    "requeue_of": t.number,
                }
                if "logical" in t.user_attrs:  # asked but never started: it gets an id when run
                    attrs["logical"] = str(t.user_attrs["logical"])
                if "prior_s" in t.user_attrs:  # a promoted trial's earlier runs
                    attrs["prior_s"] = t.user_attrs["prior_s"]
                self.study.enqueue_trial(t.params, user_attrs=attrs)
            self.study._storage.set_trial_user_attr(t._trial_id, "orphaned", True)
            self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)
            log.info("re-queued trial %s left running by a dead process", t.number)

    def _owner_alive(self, t: optuna.trial.FrozenTrial) -> bool:
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
                        "prior_s": r.prior_s,
                    },
                )
                r.trial.set_user_attr("interrupted", True)
                self.study.tell(r.trial, state=optuna.trial.TrialState.FAIL)
            except Exception:  # best effort: the next run recovers orphans anyway
                log.debug("could not re-queue trial %s", r.trial.number, exc_info=True)
        self.running.clear()


def _next_id(ledger: Ledger) -> int:
    """The id of a new logical trial: the next one after those of the run so far, so that ids
    are dense (0, 1, ...) however many attempts (retries, re-runs after a kill) they took."""
    return 1 + ledger.records.top


def heartbeat_fresh(
    t: optuna.trial.FrozenTrial, now: float, grace: float = HEARTBEAT_GRACE_S
) -> bool:
    """Whether a RUNNING trial's driver stamped it within ``grace`` seconds of ``now`` (its
    start time stands in for a trial that has no stamp yet)."""
    stamp = t.user_attrs.get(HEARTBEAT_ATTR)
    if not isinstance(stamp, int | float):
        start = getattr(t, "datetime_start", None)
        stamp = start.timestamp() if start is not None else 0.0
    return now - float(stamp) <= grace
