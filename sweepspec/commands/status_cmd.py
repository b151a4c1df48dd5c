"""``sweepspec status SPEC``: trials done/running/failed/pruned, the best so far, the run time
and an ETA, of a run in progress or finished. Reads the run directory, changes nothing.

A spec that no longer matches its run (a changed space, objective, searcher or scheduler; or
another backend) gets a warning naming what changed, and the run is shown as it ran (from its
frozen ``spec.resolved.yaml``): ``status`` and ``results`` never read an old run through a
spec it did not run. :func:`open_run` does that for both."""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from typing import Any

from sweepspec.backends import read_ledger, read_run
from sweepspec.errors import SweepspecError
from sweepspec.load import LoadedSpec, load_spec, load_text
from sweepspec.records import best_trials, utc_iso
from sweepspec.run.ledger import Ledger
from sweepspec.run.progress import eta_seconds
from sweepspec.run.rundir import RunDir, changed_sections, fingerprint
from sweepspec.search.plan import trial_count
from sweepspec.units import format_duration

__all__ = ["RunView", "main", "open_run", "spec_changes"]


def spec_changes(loaded: LoadedSpec, meta: dict[str, Any]) -> list[str]:
    """What changed between the spec a run was made with (its meta.json) and ``loaded``, in
    the sections that decide whether the run can resume: empty when it can."""
    changed = changed_sections(meta.get("fingerprint", {}), fingerprint(loaded))
    backend = meta.get("backend", loaded.spec.backend.type)
    if backend != loaded.spec.backend.type:
        changed.append(f"backend {backend} -> {loaded.spec.backend.type}")
    return changed


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

    def warning(self, path: str, extra: str = "") -> str:
        return (
            f"warning: {path} no longer matches its run in {self.rundir.path} "
            f"({', '.join(self.changed)} changed); showing the run as it ran "
            f"({self.rundir.resolved_spec.name}){extra}. `sweepspec run` refuses this spec "
            "until --fresh (start over) or --warm-start"
        )


def open_run(loaded: LoadedSpec) -> RunView:
    """The run of ``loaded``, read through the spec it ran (an error if it never ran)."""
    rundir = RunDir.for_spec(loaded)
    if not rundir.exists():
        read_run(loaded)  # raises the "no run yet" error
    meta = rundir.read_meta()
    changed = spec_changes(loaded, meta)
    as_ran = _as_ran(loaded, rundir) if changed else loaded
    ledger = read_ledger(as_ran, rundir, meta)
    return RunView(rundir, meta, ledger, as_ran, changed, _read_summary(rundir))


def _as_ran(loaded: LoadedSpec, rundir: RunDir) -> LoadedSpec:
    """The run's frozen spec; ``loaded`` when it cannot be read (then the warning still says
    what changed)."""
    try:
        text = rundir.resolved_spec.read_text(encoding="utf-8")
        return load_text(text, str(rundir.resolved_spec), feasibility=False)
    except (OSError, UnicodeDecodeError, SweepspecError):
        return loaded


def _read_summary(rundir: RunDir) -> dict[str, Any]:
    try:
        data = json.loads(rundir.summary.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _recorded_ago(view: RunView) -> float | None:
    """Seconds since meta.json (with the run time) was last written."""
    try:
        return max(0.0, time.time() - view.rundir.meta_path.stat().st_mtime)
    except OSError:
        return None


def status_data(view: RunView) -> dict[str, Any]:
    """What ``status --format json`` prints."""
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
    ago = _recorded_ago(view)
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


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, args.overrides, feasibility=False)
    view = open_run(loaded)
    if view.changed:
        print(view.warning(args.spec), file=sys.stderr)
    data = status_data(view)
    if args.format == "json":
        print(json.dumps(data, indent=2, default=str))
        return 0
    for line in _text(view, data):
        print(line)
    return 0


def _text(view: RunView, data: dict[str, Any]) -> list[str]:
    counts = data["trials"]
    done = view.ledger.finished
    run_time = f"run time {format_duration(data['elapsed_s'])}"
    ago = _recorded_ago(view)
    if view.running and ago is not None:  # in progress (or killed): as of its last record
        run_time += f" (recorded {format_duration(ago)} ago)"
    lines = [
        f"{data['name']}: {done}/{data['num_samples']} done "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAILED']} failed), "
        f"{counts['RUNNING']} running or queued; {run_time}"
    ]
    if done < data["num_samples"]:
        eta = data["eta_s"]
        lines.append(
            f"ETA {format_duration(eta)} ({data['num_samples'] - done} trials left, "
            f"{data['concurrency']} at a time, at the finished trials' mean duration)"
            if eta is not None
            else "ETA: not before the first trial finishes"
        )
    directions = view.spec.spec.objective.directions
    for b in data["best"]:
        shown = ", ".join(f"{m}={b['metrics'].get(m)}" for m in directions)
        lines.append(f"best: trial {b['trial_id']}: {shown}")
    lines.append(f"run directory: {view.rundir.path}")
    return lines
