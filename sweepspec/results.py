"""Backend-neutral trial records and the files every run directory holds:
``trials.csv`` (one row a trial, the same columns on every backend), ``best.yaml`` (the best
COMPLETE trial's full config; for several metrics, the Pareto front) and ``summary.json``."""

from __future__ import annotations

import csv
import io
import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "STATES",
    "TrialRecord",
    "best_trials",
    "csv_columns",
    "is_finite_number",
    "write_results",
]

STATES = ("COMPLETE", "PRUNED", "FAILED", "RUNNING")


@dataclass
class TrialRecord:
    """One logical trial (its retries folded in), as both backends report it."""

    trial_id: str
    state: str
    metrics: dict[str, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    iterations: int = 0
    duration_s: float | None = None
    attempts: int = 1
    error: str | None = None


def is_finite_number(value: Any) -> bool:
    """A finite int or float (not a bool): a value a metric may take."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _dominates(a: TrialRecord, b: TrialRecord, directions: Mapping[str, str]) -> bool:
    better = False
    for name, mode in directions.items():
        x, y = a.metrics[name], b.metrics[name]
        if (x < y) if mode == "max" else (x > y):
            return False
        if x != y:
            better = True
    return better


def best_trials(records: Iterable[TrialRecord], directions: Mapping[str, str]) -> list[TrialRecord]:
    """The best COMPLETE trial (one metric) or the Pareto front (several). Pruned and failed
    trials never win, and neither does a trial without every metric finite."""
    done = [
        r
        for r in records
        if r.state == "COMPLETE" and all(is_finite_number(r.metrics.get(m)) for m in directions)
    ]
    if not done:
        return []
    if len(directions) == 1:
        ((name, mode),) = directions.items()
        pick = max if mode == "max" else min
        return [pick(done, key=lambda r: r.metrics[name])]
    return [r for r in done if not any(_dominates(o, r, directions) for o in done if o is not r)]


def csv_columns(
    records: Sequence[TrialRecord], directions: Mapping[str, str], param_paths: Sequence[str]
) -> list[str]:
    others = sorted({k for r in records for k in r.metrics} - set(directions))
    return [
        "trial_id",
        "state",
        *directions,
        *others,
        *(f"params.{p}" for p in param_paths),
        "iterations",
        "duration_s",
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
        }
        row.update(r.metrics)
        row.update({f"params.{k}": v for k, v in r.params.items()})
        writer.writerow([_cell(row.get(c)) for c in columns])
    return buf.getvalue()


def best_yaml(best: Sequence[TrialRecord], directions: Mapping[str, str]) -> str:
    if not best:
        return "# no COMPLETE trial yet\n"
    if len(directions) == 1:
        r = best[0]
        metric = ", ".join(f"{m}={r.metrics[m]}" for m in directions)
        head = f"# best trial {r.trial_id}: {metric}\n"
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
    path: Path,
    records: Sequence[TrialRecord],
    directions: Mapping[str, str],
    param_paths: Sequence[str],
    extra: Mapping[str, Any],
) -> dict[str, Any]:
    """Write trials.csv, best.yaml and summary.json into the run directory ``path``."""
    from sweepspec.run.rundir import atomic_write

    records = sorted(records, key=lambda r: (len(r.trial_id), r.trial_id))
    atomic_write(path / "trials.csv", trials_csv(records, directions, param_paths))
    atomic_write(path / "best.yaml", best_yaml(best_trials(records, directions), directions))
    data = summary(records, directions, extra)
    atomic_write(path / "summary.json", json.dumps(data, indent=2, default=str) + "\n")
    return data
