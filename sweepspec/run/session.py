"""What every backend does around its own loop: open the run directory (create it and freeze
the spec, or check that the spec still matches it; ``--fresh`` and ``--warm-start`` move the
old run aside), keep the run time, write the results files and log to MLflow while the sweep
runs and once at its end."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sweepspec.errors import Problem, SweepspecError
from sweepspec.records import TrialRecord
from sweepspec.run.ledger import Ledger, records_in_order
from sweepspec.run.results import write_run_results
from sweepspec.run.rundir import RunDir, spec_changes
from sweepspec.run.tracking import MlflowSync, check_tracking, tracker_for
from sweepspec.search.plan import trial_count
from sweepspec.spec.read import LoadedSpec

__all__ = [
    "ProgressSink",
    "RunOptions",
    "RunOutcome",
    "Session",
    "changed_spec_error",
    "open_rundir",
    "resume_verdict",
]

RESULTS_EVERY_S = 5.0
#: meta.json's run time is refreshed this often while trials run (a trial may take hours):
#: ``status`` shows the run time of a live run, and one recorded long ago is a killed one
ELAPSED_EVERY_S = 5.0


class ProgressSink(Protocol):
    """What a backend tells about a run as it goes (:class:`sweepspec.run.progress.Progress`)."""

    def update(self, ledger: Ledger, elapsed: float, running: int) -> None: ...

    def trial_done(
        self, trial_id: str, state: str, metrics: Mapping[str, Any], error: str | None
    ) -> None: ...


@dataclass(frozen=True)
class RunOptions:
    """How ``sweepspec run`` (or ``worker``) was asked to run a spec."""

    fresh: bool = False  # start over; the old run is kept aside
    warm_start: bool = False  # a new run whose searcher first learns from the old run's trials
    worker: bool = False  # join a sweep that ``run`` started (shared database storage)
    #: when the command started (``time.monotonic()``): the session's time counts from there,
    #: start-up included; None: from when the session opens
    started: float | None = None


@dataclass
class RunOutcome:
    """How a run ended."""

    ledger: Ledger
    reason: str
    exit_code: int = 0
    elapsed_s: float = 0.0


def changed_spec_error(sections: list[str]) -> SweepspecError:
    return SweepspecError(
        Problem(
            f"the spec changed since this run was created ({', '.join(sections)}); its old results "
            "would be meaningless. Run with --fresh to start over (the old run is kept aside) or "
            "--warm-start to start a new run that first learns from the old trials",
            code="spec-changed",
        )
    )


def open_rundir(loaded: LoadedSpec, *, fresh: bool, warm_start: bool) -> tuple[RunDir, Path | None]:
    """The spec's run directory, and where the old run went when ``fresh``/``warm_start`` moved
    it aside; an error when the run exists and the spec changed in a way that matters."""
    rundir = RunDir.for_spec(loaded)
    old: Path | None = None
    if rundir.exists() and (fresh or warm_start):
        old = rundir.move_aside()
        print(f"previous run kept in {old}", flush=True)
    if rundir.exists():
        changed = spec_changes(loaded, rundir.read_meta())
        if changed:
            raise changed_spec_error(changed)
    return rundir, old


def resume_verdict(loaded: LoadedSpec) -> dict[str, Any]:
    """What ``sweepspec run`` of ``loaded`` would do with its run directory (without
    ``--fresh``; :func:`open_rundir` does it): ``new``, ``resume``, ``extend`` (a larger
    budget) or ``refused`` (``changed`` says why), with the directory and the trial counts
    (the run's as it last ran, None for a run made before it was recorded; the spec's)."""
    rundir = RunDir.for_spec(loaded)
    if not rundir.exists():
        return {"dir": str(rundir.path), "verdict": "new", "changed": []}
    meta = rundir.read_meta()
    changed = spec_changes(loaded, meta)
    if changed:
        return {"dir": str(rundir.path), "verdict": "refused", "changed": changed}
    old, new = meta.get("num_samples"), trial_count(loaded.spec)
    verdict = "extend" if isinstance(old, int) and new > old else "resume"
    return {"dir": str(rundir.path), "verdict": verdict, "changed": [], "trials": [old, new]}


@dataclass
class Session:
    """One process's session on a run: its directory, meta.json, the run time so far, the
    MLflow tracker (the ``run`` process logs; a ``worker`` does not)."""

    loaded: LoadedSpec
    rundir: RunDir
    meta: dict[str, Any]
    old: Path | None
    tracker: MlflowSync | None
    started: float = field(default_factory=time.monotonic)
    #: the ``run`` process (not a ``worker``): it keeps the run's time and logs to MLflow
    primary: bool = True
    _written: tuple[int, float] = (-1, 0.0)  # (finished count, when) of the last results write
    _timed: float = field(default_factory=time.monotonic)  # when meta.json's time was written

    def __post_init__(self) -> None:
        #: the run time of the earlier sessions (meta.json's ``elapsed_s`` is kept current
        #: while this one runs, so that a killed session's time counts too)
        self.before = float(self.meta.get("elapsed_s", 0.0))

    @classmethod
    def open(cls, loaded: LoadedSpec, options: RunOptions, study_name: str) -> Session:
        """Open (or create, freezing the spec) the run directory of ``loaded``."""
        check_tracking(loaded.spec)
        primary = not options.worker
        rundir, old = open_rundir(
            loaded, fresh=options.fresh and primary, warm_start=options.warm_start and primary
        )
        meta = rundir.read_meta() if rundir.exists() else rundir.create(loaded, study_name)
        rundir.remove_stale_temporaries()
        if primary:  # the run's budget as this session runs it (overrides included)
            meta["num_samples"] = trial_count(loaded.spec)
            rundir.write_meta(meta)
        tracker = tracker_for(loaded.spec, meta, rundir) if primary else None
        old_run = old if options.warm_start else None
        started = time.monotonic() if options.started is None else options.started
        return cls(loaded, rundir, meta, old_run, tracker, started=started, primary=primary)

    @property
    def elapsed_before(self) -> float:
        """The run time of the earlier sessions."""
        return self.before

    def elapsed(self) -> float:
        """The run's time: the earlier sessions' and this one's so far."""
        return self.before + time.monotonic() - self.started

    def records(self, ledger: Ledger) -> list[TrialRecord]:
        return list(records_in_order(ledger))

    def update(self, ledger: Ledger, extra: Mapping[str, Any], *, total: int) -> None:
        """While the run goes on (called every turn of a backend's loop, so it costs a time
        check when there is nothing to write): keep trials.csv, best.yaml and summary.json
        current (at most every few seconds, and at once when the last trial finished), so a
        killed run leaves them at most that stale; MLflow logs in the background. Between
        results, meta.json's run time is refreshed every few seconds."""
        now = time.monotonic()
        done, when = self._written
        if ledger.finished != done and (now - when >= RESULTS_EVERY_S or ledger.finished >= total):
            self._write_results(ledger, extra)
        elif self.primary and now - self._timed >= ELAPSED_EVERY_S:
            self._keep_time()

    def _write_results(self, ledger: Ledger, extra: Mapping[str, Any]) -> None:
        elapsed = self.elapsed()
        write_run_results(
            self.rundir,
            self.loaded.spec,
            ledger,
            {**extra, "running": True, "elapsed_s": round(elapsed, 3)},
        )
        if self.primary:
            self._keep_time(elapsed)
        if self.tracker is not None:
            self.tracker.sync_in_background(self.records(ledger))
        self._written = (ledger.finished, time.monotonic())

    def _keep_time(self, elapsed: float | None = None) -> None:
        """Write the run's time so far to meta.json: a killed run's time counts, and
        ``status`` shows it (with how long ago it was written)."""
        self.meta["elapsed_s"] = self.elapsed() if elapsed is None else elapsed
        self.rundir.write_meta(self.meta)
        self._timed = time.monotonic()

    def close(self, ledger: Ledger, extra: Mapping[str, Any]) -> float:
        """At the session's end (however it ended): add this session's time to the run's,
        write the results files, log what MLflow lacks. Returns the run's whole time."""
        elapsed = self.elapsed()
        if self.primary:
            self.meta["elapsed_s"] = elapsed
            self.rundir.write_meta(self.meta)
        write_run_results(
            self.rundir, self.loaded.spec, ledger, {"elapsed_s": round(elapsed, 3), **extra}
        )
        if self.tracker is not None:
            self.tracker.close(self.records(ledger))
        return elapsed
