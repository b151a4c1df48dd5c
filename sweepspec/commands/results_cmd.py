"""``sweepspec results SPEC``: the top trials as a table; writes trials.csv, best.yaml,
summary.json in the run directory."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from sweepspec.backends import read_run
from sweepspec.load import load_spec
from sweepspec.plots import PlotParam, plot_results, plots_available
from sweepspec.records import TrialRecord, best_trials
from sweepspec.run.ledger import records_in_order
from sweepspec.run.results import write_run_results
from sweepspec.run.tracking import tracker_for
from sweepspec.spec import Spec

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, args.overrides, feasibility=False)
    rundir, ledger, meta = read_run(loaded)
    spec = loaded.spec
    directions = spec.objective.directions
    records = records_in_order(ledger)
    paths = [p.path for p in spec.sampled_params()]
    data = write_run_results(
        rundir, spec, ledger, {"elapsed_s": meta.get("elapsed_s")}, total=meta.get("num_samples")
    )
    plot_files = _plots(args, rundir.plots, records, directions, spec)
    tracker = tracker_for(spec, meta)
    if tracker is not None:
        logged = tracker.close(records)
        if logged and not args.json:
            print(f"MLflow: logged {logged} trial(s) to {tracker.experiment!r}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, indent=2, default=str))
        return 0
    (metric, mode), *_ = directions.items()

    def ranked(state: str) -> list[TrialRecord]:
        rows = [
            r
            for r in records
            if r.state == state
            and isinstance(r.metrics.get(metric), int | float)
            and math.isfinite(r.metrics[metric])
        ]
        return sorted(rows, key=lambda r: r.metrics[metric], reverse=mode == "max")

    # complete trials first (only they can be the best), then pruned ones by their last value
    done = ranked("COMPLETE")
    shown = (done + ranked("PRUNED"))[: args.top]
    front = {b.trial_id for b in best_trials(records, directions)}
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"{spec.run_name}: top {len(shown)} of {len(records)} trials ({len(done)} complete)"
    )
    table.add_column("trial")
    table.add_column("state")
    for m in directions:
        table.add_column(f"{m} ({directions[m]})", justify="right")
    for p in paths:
        table.add_column(p, justify="right")
    for r in shown:
        mark = "*" if r.trial_id in front else ""
        table.add_row(
            f"{r.trial_id}{mark}",
            r.state.lower(),
            *(_fmt(r.metrics.get(m)) for m in directions),
            *(_fmt(r.params.get(p)) for p in paths),
        )
    # on a terminal the table fits its width; in a file or a CI log it is printed whole
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240).print(table)
    print(f"* best; files: {rundir.path}/trials.csv, best.yaml, summary.json")
    if plot_files:
        print(f"plots: {', '.join(str(p) for p in plot_files)}")
    elif not args.no_plots and not plots_available():
        print("plots: not drawn, matplotlib is missing (pip install 'sweepspec[plots]')")
    return 0


def _plots(
    args: argparse.Namespace,
    out_dir: Path,
    records: Sequence[TrialRecord],
    directions: Mapping[str, str],
    spec: Spec,
) -> list[Path]:
    if args.no_plots or not plots_available():
        return []
    params = [
        PlotParam(
            p.path,
            log=p.kind == "loguniform" or bool(getattr(p.node, "log", False)),
            categorical=p.kind in ("choice", "grid"),
        )
        for p in spec.sampled_params()
    ]
    return plot_results(out_dir, records, directions, params)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
