"""``sweepspec status SPEC``: trials done/running/failed/pruned and the best so far."""

from __future__ import annotations

import argparse
import json

from sweepspec.backends import read_run
from sweepspec.load import load_spec
from sweepspec.records import best_trials
from sweepspec.search.plan import trial_count
from sweepspec.units import format_duration

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, args.overrides, feasibility=False)
    rundir, ledger, meta = read_run(loaded)
    spec = loaded.spec
    directions = spec.objective.directions
    best = best_trials(ledger.records.values(), directions)
    counts = {s: ledger.count(s) for s in ("COMPLETE", "PRUNED", "FAILED", "RUNNING")}
    total = int(meta.get("num_samples") or trial_count(spec))  # the run's, overrides included
    if args.json:
        print(
            json.dumps(
                {
                    "name": spec.run_name,
                    "run_dir": str(rundir.path),
                    "num_samples": total,
                    "trials": counts,
                    "elapsed_s": meta.get("elapsed_s"),
                    "best": [
                        {"trial_id": b.trial_id, "metrics": b.metrics, "params": b.params}
                        for b in best
                    ],
                    "completed": {
                        r.trial_id: {"params": r.params, "metrics": r.metrics}
                        for r in ledger.records.values()
                        if r.state == "COMPLETE"
                    },
                },
                indent=2,
                default=str,
            )
        )
        return 0
    done = ledger.finished
    print(
        f"{spec.run_name}: {done}/{total} done "
        f"({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, {counts['FAILED']} failed), "
        f"{counts['RUNNING']} running or queued; "
        f"run time {format_duration(meta.get('elapsed_s', 0))}"
    )
    for b in best:
        shown = ", ".join(f"{m}={b.metrics.get(m)}" for m in directions)
        print(f"best: trial {b.trial_id}: {shown}")
    print(f"run directory: {rundir.path}")
    return 0
