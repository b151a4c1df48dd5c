"""A run as ``status`` and ``results`` read it (changing nothing): its meta.json, ledger and
summary.json, through the spec it ran, and the numbers ``status`` shows (counts, run time,
ETA, the best trials).

A spec that no longer matches its run (a changed space, objective, searcher or scheduler; or
another backend) is read through the run's frozen ``spec.resolved.yaml``: ``status`` and
``results`` never read an old run through a spec it did not run. The view is opened by
:func:`sweepspec.backends.open_run` (the run's backend reads its ledger)."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from sweepspec.errors import SweepspecError
from sweepspec.records import best_trials, utc_iso
from sweepspec.run.ledger import Ledger
from sweepspec.run.progress import eta_seconds
from sweepspec.run.rundir import RunDir
from sweepspec.search.plan import trial_count
from sweepspec.spec.checks import check_spec
from sweepspec.spec.read import LoadedSpec, read_text

__all__ = ["RunView", "read_as_ran", "read_summary", "status_data"]


@dataclass
class RunView:
    """A run as ``status`` and ``results`` read it."""

    rundir: RunDir
    meta: dict[str, Any]
    ledger: Ledger
    #: the spec the run ran: ``loaded`` itself, or the run's frozen one when the spec changed
    spec: LoadedSpec
    #: what changed since the run was made (empty: the spec matches its run)
    changed: list[str]
    summary: dict[str, Any]

    @property
    def total(self) -> int:
        """The run's budget as its last ``run`` set it (overrides included)."""
        return int(self.meta.get("num_samples") or trial_count(self.spec.spec))

    @property
    def running(self) -> bool:
        """Whether the last session had not ended when summary.json was last written (a run
        in progress, or one that was killed)."""
        return bool(self.summary.get("running"))

    def recorded_ago(self) -> float | None:
        """Seconds since meta.json (with the run time) was last written: a few while the run
        goes on (a session refreshes it), long ago for a killed one."""
        try:
            return max(0.0, time.time() - self.rundir.meta_path.stat().st_mtime)
        except OSError:
            return None

    def warning(self, path: str, extra: str = "") -> str:
        return (
            f"warning: {path} no longer matches its run in {self.rundir.path} "
            f"({', '.join(self.changed)} changed); showing the run as it ran "
            f"({self.rundir.resolved_spec.name}){extra}. `sweepspec run` refuses this spec "
            "until --fresh (start over) or --warm-start"
        )


def read_as_ran(loaded: LoadedSpec, rundir: RunDir) -> LoadedSpec:
    """The run's frozen spec (valid, its checks passed when the run was made, so only the
    spec's own checks run again); ``loaded`` when it cannot be read (then the warning still
    says what changed)."""
    try:
        text = rundir.resolved_spec.read_text(encoding="utf-8")
        frozen = read_text(text, str(rundir.resolved_spec))
    except (OSError, UnicodeDecodeError, SweepspecError):
        return loaded
    return loaded if check_spec(frozen.spec, frozen.source) else frozen


def read_summary(rundir: RunDir) -> dict[str, Any]:
    """summary.json; empty when it is missing or damaged."""
    try:
        data = json.loads(rundir.summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def status_data(view: RunView) -> dict[str, Any]:
    """What ``status`` shows (and ``status --format json`` prints): trial counts, the run
    time and when it was recorded, the concurrency, the ETA, the best and completed trials."""
    spec = view.spec.spec
    ledger = view.ledger
    counts = {s: ledger.count(s) for s in ("COMPLETE", "PRUNED", "FAILED", "RUNNING")}
    elapsed = float(view.meta.get("elapsed_s") or 0.0)
    concurrency = int(view.summary.get("concurrency") or max(1, counts["RUNNING"]))
    budget = spec.stop.sweep.time_budget
    eta = eta_seconds(
        ledger.records.values(),
        view.total - ledger.finished,
        concurrency,
        time_left=None if budget is None else budget - elapsed,
    )
    ago = view.recorded_ago()
    return {
        "name": spec.run_name,
        "run_dir": str(view.rundir.path),
        "num_samples": view.total,
        "trials": counts,
        "running": view.running,
        "elapsed_s": elapsed,
        "elapsed_recorded_at": utc_iso(time.time() - ago) if ago is not None else None,
        "concurrency": concurrency,
        "eta_s": None if eta is None else round(eta, 1),
        "spec_changed": view.changed,
        "best": [
            {"trial_id": b.trial_id, "metrics": b.metrics, "params": b.params}
            for b in best_trials(ledger.records.values(), spec.objective.directions)
        ],
        "completed": {
            r.trial_id: {"params": r.params, "metrics": r.metrics}
            for r in ledger.records.values()
            if r.state == "COMPLETE"
        },
    }
