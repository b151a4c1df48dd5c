"""The Ray driver's callback: writes ``ledger.jsonl`` (exactly once per trial), keeps the
results files and MLflow current, drives the progress display and tells the stopper about
failures. Driver side only: imports Ray Tune."""

from __future__ import annotations

import itertools
import os
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ray.tune import Callback

from sweepspec.backends.ray_backend.compile import RayPlan
from sweepspec.backends.ray_backend.ledger_file import LedgerFile, record_from
from sweepspec.backends.ray_backend.search import SpecSearchGenerator
from sweepspec.backends.ray_backend.stopper import SpecStopper, stopped_state
from sweepspec.backends.ray_backend.trainable import (
    FAILED_KEY,
    ITERATIONS_KEY,
    REPLAY_KEY,
    TrialFailed,
)
from sweepspec.errors import DISK_FULL_HINT, Problem, SweepspecError
from sweepspec.records import TrialRecord, json_metrics, utc_iso
from sweepspec.run.child import DISK_FULL
from sweepspec.run.crash import crash_point
from sweepspec.run.history import append_report
from sweepspec.run.ledger import Ledger
from sweepspec.run.rundir import RunDir
from sweepspec.run.session import ProgressSink
from sweepspec.search.params import active_values

__all__ = ["SweepCallback"]

SHORT_TRIAL_S = 2.0
SHORT_TRIAL_AFTER = 4


class SweepCallback(Callback):
    """Writes ``ledger.jsonl`` (exactly once per trial), drives the progress display and
    tells the stopper about failures. Runs in the driver."""

    def __init__(
        self,
        plan: RayPlan,
        ledger_file: LedgerFile,
        stopper: SpecStopper,
        progress: ProgressSink | None,
        elapsed_before: float,
    ) -> None:
        self.plan = plan
        self.file = ledger_file
        self.rundir = RunDir(ledger_file.path.parent)
        self.stopper = stopper
        self.progress = progress
        self.elapsed_before = elapsed_before
        self.started_at = time.monotonic()
        self.ledger = ledger_file.ledger()
        self.ended = set(ledger_file.ends())
        self.started = {e["ray_id"] for e in ledger_file.events()}
        #: when each trial first started (ISO 8601, UTC), from its start event
        self.first_started = {
            e["ray_id"]: e.get("started_at") for e in ledger_file.events() if e["event"] == "start"
        }
        self.ids = ledger_file.trial_ids()  # a dropped trial's id is free again
        self.stopped: dict[str, dict[str, Any]] = {}
        self.metrics: dict[str, dict[str, Any]] = {}
        self.recoveries: dict[str, int] = {}
        self.durations: list[float] = []
        self.warned = False
        self.last_update = 0.0
        self.interrupted = False
        #: the error that must stop the run (a full disk): Tune wraps what a callback raises
        #: in a TuneError of its own text; the session raises this instead
        self.fatal: SweepspecError | None = None
        #: called with the ledger after each trial's end and every turn of Tune's loop (results
        #: files, meta.json's run time, MLflow: the session writes only what is due); never
        #: pickled
        self.on_record: Callable[[Ledger], None] | None = None
        #: told to launch no more trials once a whole-sweep stop is reached; never pickled
        self.generator: SpecSearchGenerator | None = None
        #: on a resume, the Ray trial ids of the snapshot Ray restores (checked at the first
        #: step: Ray starts the experiment over, silently, when its restore fails)
        self.restored: set[str] = set()

    def __getstate__(self) -> dict[str, Any]:  # saved in tuner.pkl: no live objects
        state = dict(self.__dict__)
        state["progress"] = None
        state["on_record"] = None
        state["generator"] = None
        return state

    # -- helpers --

    def _tid(self, trial: Any) -> str:
        """The trial's id in the run: the lowest one free, so that ids stay dense (0, 1, ...)
        across resumes (the id of a trial dropped on resume goes to the one replacing it)."""
        if trial.trial_id in self.ids:
            return self.ids[trial.trial_id]
        used = {int(v) for v in self.ids.values() if v.isdigit()}
        tid = str(next(i for i in itertools.count() if i not in used))
        self.ids[trial.trial_id] = tid
        return tid

    def _params(self, trial: Any) -> dict[str, Any]:
        values = active_values(self.plan.space, trial.config)
        return {p.path: values[p.path] for p in self.plan.space.sampled if p.path in values}

    def _user_metrics(self, result: dict[str, Any]) -> dict[str, Any]:
        from ray.tune.result import AUTO_RESULT_KEYS

        skip = {
            *AUTO_RESULT_KEYS,
            "done",
            "trial_id",
            "experiment_tag",
            "should_checkpoint",
            "__duplicate__",
            ITERATIONS_KEY,
        }
        return json_metrics(
            {k: v for k, v in result.items() if k not in skip and not k.startswith("sweepspec_")}
        )

    def _end(self, trial: Any, state: str, error: str | None) -> None:
        if trial.trial_id in self.ended:
            return
        self.ended.add(trial.trial_id)
        result = dict(trial.last_result or {})
        metrics = self.metrics.pop(trial.trial_id, None) or self._user_metrics(result)
        values = active_values(self.plan.space, trial.config)
        duration = result.get("time_total_s")
        item = {
            "event": "end",
            "ray_id": trial.trial_id,
            "trial_id": self._tid(trial),
            "state": state,
            "metrics": metrics,
            "params": self._params(trial),
            "config": self.plan.space.build_config(values),
            "iterations": int(result.get(ITERATIONS_KEY, result.get("training_iteration", 0)) or 0),
            "duration_s": round(float(duration), 3) if duration is not None else None,
            "attempts": 1 + self.recoveries.get(trial.trial_id, 0),
            "error": error,
            "started_at": self.first_started.get(trial.trial_id),
            "ended_at": utc_iso(time.time()),
        }
        self._append(item, sync=True)
        tid = item["trial_id"]
        self.ledger.records[tid] = record_from(item, tid)
        self.ledger.in_flight.discard(tid)
        if state == "FAILED":
            self.stopper.note_failure()
        elif duration is not None:
            self.durations.append(float(duration))
            self._maybe_warn_short()
        if self.progress is not None:
            self.progress.trial_done(tid, state, metrics, error)
        self._record()

    def _maybe_warn_short(self) -> None:
        if self.warned or len(self.durations) < SHORT_TRIAL_AFTER:
            return
        self.warned = True
        median = statistics.median(self.durations)
        if median < SHORT_TRIAL_S:
            print(
                f"warning: trials take {median:.2f} s (median); Ray's per-trial overhead "
                "and start-up dominate trials this short; backend: {type: optuna} runs "
                "them faster",
                file=sys.stderr,
                flush=True,
            )

    # -- Ray hooks --

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if trial.trial_id in self.started:
            return
        self.started.add(trial.trial_id)
        tid = self._tid(trial)
        params = self._params(trial)
        started = self.first_started[trial.trial_id] = utc_iso(time.time())
        self._append(
            {
                "event": "start",
                "ray_id": trial.trial_id,
                "trial_id": tid,
                "params": params,
                "started_at": started,
            },
            sync=False,
        )
        if tid not in self.ledger.records:
            self.ledger.records[tid] = TrialRecord(
                tid, "RUNNING", params=params, started_at=started
            )
            self.ledger.in_flight.add(tid)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if result.get("done"):
            self.stopped[trial.trial_id] = dict(result)
        if FAILED_KEY not in result:
            metrics = self._user_metrics(result)
            self.metrics[trial.trial_id] = metrics
            step = result.get(ITERATIONS_KEY)
            if isinstance(step, int) and not result.get(REPLAY_KEY):
                elapsed = float(result.get("time_total_s") or 0.0)
                append_report(self.rundir, self._tid(trial), step, elapsed, metrics)
                crash_point("after_report")

    def _append(self, item: dict[str, Any], *, sync: bool) -> None:
        try:
            self.file.append(item, sync=sync)
        except SweepspecError as exc:
            self.fatal = exc
            raise

    def _record(self) -> None:
        """The results files, meta.json and MLflow, as far as they are due; an error writing
        them (a full disk) stops the run and is the one shown."""
        if self.on_record is None:
            return
        try:
            self.on_record(self.ledger)
        except SweepspecError as exc:
            self.fatal = exc
            raise

    def _stop_if_disk_full(self, trial: Any) -> None:
        """A trial that met a full disk did not fail: the run stops (the trial stays in
        flight in the ledger, to run again when the run resumes)."""
        error = _trial_error(trial)
        if error.startswith(f"{DISK_FULL}:"):
            where = f"trial {self._tid(trial)}"
            self.fatal = SweepspecError(
                Problem(f"{where}: {error}; {DISK_FULL_HINT}", code="disk-full")
            )
            raise self.fatal

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self._stop_if_disk_full(trial)
        self.recoveries[trial.trial_id] = self.recoveries.get(trial.trial_id, 0) + 1

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        stopped = self.stopped.pop(trial.trial_id, None)
        if stopped is not None and FAILED_KEY in stopped:
            self._end(trial, "FAILED", str(stopped[FAILED_KEY]))
            return
        if stopped is not None:  # Ray stopped it at a result: a rule, max_t or the scheduler
            state = stopped_state(self.plan, stopped)
        elif (trial.last_result or {}).get("done"):
            state = "COMPLETE"  # the objective returned
        else:  # the scheduler ended it while paused or pending (HyperBand)
            state = stopped_state(self.plan, trial.last_result or {})
        # (a whole-sweep stop, time budget, target or max_failed, launches no more trials
        # and lets the running ones end: they get here too)
        self._end(trial, state, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.stopped.pop(trial.trial_id, None)
        self._stop_if_disk_full(trial)
        self._end(trial, "FAILED", _trial_error(trial))

    def setup(self, **info: Any) -> None:  # type: ignore[override]
        """Notice Ctrl-C: Ray's own SIGINT handler (installed just before this) stops the
        experiment gracefully and returns from ``fit()`` as if it had ended."""
        self.interrupted = False
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return

        def handler(signum: int, frame: Any) -> None:
            self.interrupted = True
            previous(signum, frame)

        signal.signal(signal.SIGINT, handler)

    def on_step_begin(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.restored:
            self._check_restored(trials)
        if self.stopper.reason and self.generator is not None:
            self.generator.stop_launching(self.stopper.reason)

    def _check_restored(self, trials: list[Any]) -> None:
        """Ray restored the snapshot's trials; or it failed to, and would start the
        experiment over (every trial again): the run stops before any trial starts."""
        expected, self.restored = self.restored, set()
        if expected & {t.trial_id for t in trials}:
            return
        self.fatal = SweepspecError(
            Problem(
                f"Ray could not restore its experiment state in {self.rundir.experiment} and "
                "would run every trial again; no trial was started. Run with --fresh to start "
                "over (the old run is kept aside), or --warm-start to start a new run whose "
                "searcher first learns from the finished trials",
                code="ray-state",
            )
        )
        raise self.fatal

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if time.monotonic() - self.last_update < 0.25:
            return
        self.last_update = time.monotonic()
        self._record()  # a live run's time in meta.json, while trials run
        if self.progress is None:
            return
        running = sum(1 for t in trials if t.status == "RUNNING")
        self.progress.update(self.ledger, self.elapsed(), running)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started_at


def _trial_error(trial: Any) -> str:
    """The short message of a trial's last error (our TrialFailed, or Ray's own)."""
    path = getattr(trial, "pickled_error_file", None)
    if path and os.path.exists(path):
        try:
            from ray import cloudpickle

            with open(path, "rb") as fh:
                exc = cloudpickle.load(fh)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TrialFailed):
                return cause.message
            if cause is not None:
                return f"{type(cause).__name__}: {cause}"[:500]
            return str(exc).strip().splitlines()[-1][:500]
        except Exception:  # a damaged or foreign pickle: fall back to the text file
            pass
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        lines = [x for x in Path(path).read_text(errors="replace").splitlines() if x.strip()]
        if lines:
            return lines[-1][:500]
    return "the trial failed (no error message recorded)"
