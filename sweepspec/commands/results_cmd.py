"""``sweepspec results SPEC``: the top trials as a table (or all trials as CSV, or the summary
as JSON); writes trials.csv, best.yaml, summary.json, plots/ and report.html in the run
directory, and logs what MLflow lacks. ``--export-best PATH`` and ``--trials-csv PATH`` copy
best.yaml and trials.csv where a training config or a notebook wants them.

A spec that no longer matches its run changes nothing in the run directory (no results
files, no plots, no MLflow): it gets a warning, and the run is shown as it ran."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sweepspec.backends import open_run
from sweepspec.errors import Location, Problem, SweepspecError
from sweepspec.load import load_spec
from sweepspec.plots import Plots, plots_available, write_plots
from sweepspec.records import TrialRecord, best_trials
from sweepspec.report import write_report
from sweepspec.run.ledger import records_in_order
from sweepspec.run.results import best_yaml, summary, trials_csv, write_run_results
from sweepspec.run.tracking import tracker_for
from sweepspec.run.view import RunView

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, args.overrides, feasibility=False)
    view = open_run(loaded)
    spec = view.spec.spec
    directions = spec.objective.directions
    records = list(records_in_order(view.ledger))
    paths = [p.path for p in spec.sampled_params()]
    extra = {"elapsed_s": view.meta.get("elapsed_s")}
    drawn = Plots()
    report: Path | None = None
    if view.changed:
        print(view.warning(args.spec, "; the results files are left as they are"), file=sys.stderr)
        data = summary(
            records,
            directions,
            {
                "name": spec.run_name,
                "backend": view.meta.get("backend"),
                "num_samples": view.total,
                **extra,
            },
        )
    else:
        data = write_run_results(view.rundir, spec, view.ledger, extra, total=view.total)
        drawn = _plots(args, view, records)
        report = write_report(
            view.rundir,
            view.spec,
            records,
            drawn.files,
            notes=drawn.notes,
            meta=view.meta,
            top=args.top,
        )
        _track(args, view, records)
    _exports(args, records, directions, paths)
    if args.format == "json":
        print(
            json.dumps(
                {**data, "top": _top_json(records, directions, args.top)}, indent=2, default=str
            )
        )
    elif args.format == "csv":
        sys.stdout.write(trials_csv(records, directions, paths))
    else:
        _table(view, records, paths, args.top)
        _files_note(view, drawn, report)
    return 0


def _track(args: argparse.Namespace, view: RunView, records: Sequence[TrialRecord]) -> None:
    tracker = tracker_for(view.spec.spec, view.meta, view.rundir)
    if tracker is not None:
        logged = tracker.close(records)
        if logged and args.format == "table":
            print(f"MLflow: logged {logged} trial(s) to {tracker.experiment!r}", file=sys.stderr)


def _exports(
    args: argparse.Namespace,
    records: Sequence[TrialRecord],
    directions: Mapping[str, str],
    paths: Sequence[str],
) -> None:
    """``--export-best PATH`` and ``--trials-csv PATH``."""
    if args.export_best:
        _write(Path(args.export_best), best_yaml(best_trials(records, directions), directions))
    if args.trials_csv:
        _write(Path(args.trials_csv), trials_csv(records, directions, paths))


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        where = Location(str(path))
        message = f"cannot write: {exc.strerror or exc}"
        raise SweepspecError(Problem(message, location=where, code="io")) from None
    print(f"wrote {path}", file=sys.stderr)


def _ranked(records: Sequence[TrialRecord], directions: Mapping[str, str]) -> list[TrialRecord]:
    """Complete trials first (only they can be the best), then pruned ones by their last
    value, each by the first metric."""
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

    return ranked("COMPLETE") + ranked("PRUNED")


def _top_json(
    records: Sequence[TrialRecord], directions: Mapping[str, str], top: int
) -> list[dict[str, Any]]:
    return [
        {"trial_id": r.trial_id, "state": r.state, "metrics": r.metrics, "params": r.params}
        for r in _ranked(records, directions)[:top]
    ]


def _table(view: RunView, records: Sequence[TrialRecord], paths: Sequence[str], top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    spec = view.spec.spec
    directions = spec.objective.directions
    ranked = _ranked(records, directions)
    shown = ranked[:top]
    complete = sum(1 for r in records if r.state == "COMPLETE")
    front = {b.trial_id for b in best_trials(records, directions)}
    table = Table(
        title=f"{spec.run_name}: top {len(shown)} of {len(records)} trials ({complete} complete)"
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


def _files_note(view: RunView, drawn: Plots, report: Path | None) -> None:
    if view.changed:
        print(f"* best; run directory (unchanged): {view.rundir.path}")
        return
    print(f"* best; files: {view.rundir.path}/trials.csv, best.yaml, summary.json")
    if drawn.files:
        print(f"plots: {', '.join(p.name for p in drawn.files)} (in {view.rundir.plots})")
    for note in drawn.notes:
        print(f"plots: {note}")
    if report is not None:
        print(f"report: {report}")


def _plots(args: argparse.Namespace, view: RunView, records: Sequence[TrialRecord]) -> Plots:
    if args.no_plots:
        return Plots(notes=["not drawn (--no-plots)"])
    if not plots_available():
        return Plots(
            notes=["not drawn: matplotlib or optuna is missing (pip install 'sweepspec[plots]')"]
        )
    return write_plots(view.rundir, view.spec.spec, records)


def _fmt(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
