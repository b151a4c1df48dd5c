"""The results files every run directory holds, whatever the backend: ``trials.csv`` (one row
a trial, the same columns on every backend), ``best.yaml`` (the best COMPLETE trial's full
config; for several metrics, the Pareto front) and ``summary.json``."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from typing import Any

import yaml

from sweepspec.records import STATES, TrialRecord, best_trials
from sweepspec.run.ledger import Ledger, records_in_order
from sweepspec.run.rundir import RunDir, atomic_write
from sweepspec.search.plan import trial_count
from sweepspec.spec.root import Spec

__all__ = ["csv_columns", "trials_csv", "write_results", "write_run_results"]


#: trials.csv's own columns; a metric of the same name gets the column ``metrics.<name>``
RESERVED = ("trial_id", "state", "iterations", "duration_s", "started_at", "ended_at")


def _metric_column(name: str) -> str:
    return f"metrics.{name}" if name in RESERVED or name.startswith("params.") else name


def csv_columns(
    records: Sequence[TrialRecord], directions: Mapping[str, str], param_paths: Sequence[str]
) -> list[str]:
    others = sorted({k for r in records for k in r.metrics} - set(directions))
    return [
        "trial_id",
        "state",
        *(_metric_column(m) for m in directions),
        *(_metric_column(m) for m in others),
        *(f"params.{p}" for p in param_paths),
        "iterations",
        "duration_s",
        "started_at",
        "ended_at",
    ]


def _cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, list | dict):
        return json.dumps(value)
    return value


def trials_csv(
    records: Sequence[TrialRecord], directions: Mapping[str, str], param_paths: Sequence[str]
) -> str:
    columns = csv_columns(records, directions, param_paths)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for r in records:
        row: dict[str, Any] = {
            "trial_id": r.trial_id,
            "state": r.state,
            "iterations": r.iterations,
            "duration_s": None if r.duration_s is None else round(r.duration_s, 3),
            "started_at": r.started_at,
            "ended_at": r.ended_at,
        }
        row.update({_metric_column(k): v for k, v in r.metrics.items()})
        row.update({f"params.{k}": v for k, v in r.params.items()})
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def best_yaml(
    best: Sequence[TrialRecord], directions: Mapping[str, str], metrics: Sequence[str] = ()
) -> str:
    """The best trial's config with its value in a comment (``metrics``: shown beside it, the
    metrics of a score), or the Pareto front."""
    if not best:
        return "# no COMPLETE trial yet\n"
    if len(directions) == 1:
        r = best[0]
        metric = ", ".join(f"{m}={r.metrics[m]}" for m in directions)
        beside = ", ".join(f"{m}={r.metrics.get(m)}" for m in metrics if m not in directions)
        head = f"# best trial {r.trial_id}: {metric}" + (f" ({beside})" if beside else "") + "\n"
        return head + yaml.safe_dump(r.config, sort_keys=False)
    front = [
        {
            "trial_id": r.trial_id,
            "metrics": {m: r.metrics[m] for m in directions},
            "config": r.config,
        }
        for r in best
    ]
    return f"# Pareto front: {len(front)} trial(s)\n" + yaml.safe_dump(front, sort_keys=False)


def summary(
    records: Sequence[TrialRecord], directions: Mapping[str, str], extra: Mapping[str, Any]
) -> dict[str, Any]:
    counts = Counter(r.state for r in records)
    best = best_trials(records, directions)
    return {
        **extra,
        "trials": {s: counts.get(s, 0) for s in STATES},
        "directions": dict(directions),
        "best": [
            {k: v for k, v in asdict(r).items() if k in ("trial_id", "metrics", "params")}
            for r in best
        ],
        "failed": [
            {"trial_id": r.trial_id, "error": r.error} for r in records if r.state == "FAILED"
        ][:50],
    }


def write_results(
    rundir: RunDir,
    records: Sequence[TrialRecord],
    directions: Mapping[str, str],
    param_paths: Sequence[str],
    extra: Mapping[str, Any],
    metrics: Sequence[str] = (),
) -> dict[str, Any]:
    """Write trials.csv, best.yaml and summary.json into ``rundir``; returns the summary
    (``metrics``: shown beside the best trial's value in best.yaml, the metrics of a score)."""
    records = sorted(records, key=lambda r: (len(r.trial_id), r.trial_id))
    atomic_write(rundir.trials_csv, trials_csv(records, directions, param_paths))
    best = best_trials(records, directions)
    atomic_write(rundir.best_yaml, best_yaml(best, directions, metrics))
    data = summary(records, directions, extra)
    atomic_write(rundir.summary, json.dumps(data, indent=2, default=str) + "\n")
    return data


def write_run_results(
    rundir: RunDir,
    spec: Spec,
    ledger: Ledger,
    extra: Mapping[str, Any],
    *,
    total: int | None = None,
) -> dict[str, Any]:
    """The results files of ``spec``'s run from its ledger (``extra`` goes into summary.json;
    ``total``: the run's budget, when it is not the spec's own, e.g. an override's)."""
    score = {"score": spec.objective.score} if spec.objective.score is not None else {}
    return write_results(
        rundir,
        records_in_order(ledger),
        spec.objective.directions,
        [p.path for p in spec.sampled_params()],
        {
            "name": spec.run_name,
            "backend": spec.backend.type,
            "num_samples": total or trial_count(spec),
            **score,
            **extra,
        },
        spec.objective.score_metrics,
    )
