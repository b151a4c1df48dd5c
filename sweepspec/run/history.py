"""Every ``trial.report`` of every trial, with its step: ``<run>/reports/<trial id>.jsonl``,
one JSON object a line, ``{"step": 3, "time_s": 1.25, "attempt": 0, "<metric>": value, ...}``.
The driver appends them (both backends) as reports arrive; learning-curve plots and MLflow read
them back. A step that a retried or resumed trial reports again appears again: the last one
counts (:func:`read_reports`). A line torn by a kill is skipped."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

from sweepspec.records import json_metrics
from sweepspec.run.rundir import RunDir

__all__ = ["append_report", "read_reports"]


def append_report(
    rundir: RunDir,
    trial_id: str,
    step: int,
    time_s: float,
    metrics: Mapping[str, Any],
    attempt: int = 0,
) -> None:
    """Append one report of ``trial_id`` (never raises: the history is a view, not the
    record; a full disk costs the curve, not the sweep)."""
    path = rundir.reports_file(trial_id)
    item = {"step": int(step), "time_s": round(float(time_s), 4), "attempt": int(attempt)}
    item.update(json_metrics(metrics))
    line = (json.dumps(item, default=str, allow_nan=True) + "\n").encode("utf-8")
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except FileNotFoundError:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError:
            return
    except OSError:
        return
    try:
        os.write(fd, line)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_reports(rundir: RunDir, trial_id: str) -> list[dict[str, Any]]:
    """The reports of ``trial_id`` by step (the last report of a step wins), oldest first."""
    try:
        data = rundir.reports_file(trial_id).read_bytes()
    except OSError:
        return []
    by_step: dict[int, dict[str, Any]] = {}
    for line in data.splitlines():
        try:
            item = json.loads(line)
        except ValueError:
            continue
        if isinstance(item, dict) and isinstance(item.get("step"), int):
            by_step[item["step"]] = item
    return [by_step[s] for s in sorted(by_step)]
