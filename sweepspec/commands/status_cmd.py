"""``sweepspec status SPEC``: trials done/running/failed/pruned, the best so far, the run time
and an ETA, of a run in progress or finished. Reads the run directory, changes nothing.

A spec that no longer matches its run (a changed space, objective, searcher or scheduler; or
another backend) gets a warning naming what changed, and the run is shown as it ran (from its
frozen ``spec.resolved.yaml``): ``status`` and ``results`` never read an old run through a
spec it did not run. :func:`sweepspec.backends.open_run` does that for both
(:mod:`sweepspec.run.view`)."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sweepspec.backends import open_run
from sweepspec.load import load_spec
from sweepspec.run.view import RunView, status_data
from sweepspec.units import format_duration

__all__ = ["main"]


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
    ago = view.recorded_ago()
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
