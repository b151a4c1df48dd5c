"""Backend-neutral trial records: one logical trial (its retries folded in) as both backends
report it, which of them is best, and what a finished trial's metrics must hold."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeGuard

from sweepspec.suggest import did_you_mean

__all__ = [
    "STATES",
    "TERMINAL",
    "TrialRecord",
    "best_trials",
    "final_values",
    "is_finite_number",
    "json_metrics",
    "plain_value",
    "utc_iso",
]

STATES = ("COMPLETE", "PRUNED", "FAILED", "RUNNING")
TERMINAL = ("COMPLETE", "PRUNED", "FAILED")
RETURN_KEY = "__return__"  # a bare number returned by the objective


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
    #: when its first attempt started and its last ended (ISO 8601, UTC)
    started_at: str | None = None
    ended_at: str | None = None
    #: PRUNED by promotion-based ASHA at a rung, with its checkpoint: it may still be promoted
    #: (and run on) until the run ends
    paused: bool = False


def utc_iso(moment: datetime | float | None) -> str | None:
    """A moment (an aware or local naive datetime, or a ``time.time()`` reading) as ISO 8601
    in UTC with milliseconds: ``2026-12-01T20:51:03.120Z``."""
    if moment is None:
        return None
    if isinstance(moment, int | float):
        moment = datetime.fromtimestamp(moment, UTC)
    text = moment.astimezone(UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


def is_finite_number(value: Any) -> TypeGuard[int | float]:
    """A finite int or float (not a bool) that a float can hold: a value a metric may take
    (``10**5000`` is no metric: no searcher or scheduler can compare it)."""
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


MAX_TEXT = 1000  # the longest text a metric value keeps in the run's records


def plain_value(value: Any) -> Any:
    """A metric's value as the run's records keep it (JSON-safe): a bool, a float (NaN and
    infinities as text), an int a float can hold, or text of at most MAX_TEXT characters. A
    number type of another library (numpy, torch) becomes a float; an int too large for a
    float becomes a short description (its digits could not even be printed)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if abs(value) < 2**63:
            return value
        try:
            return float(value)
        except OverflowError:
            return f"<an int of {value.bit_length()} bits>"
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 3] + "..."
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        try:
            text = str(value)
        except Exception:  # an object whose str() fails (or is too long to make)
            text = f"<{type(value).__name__}>"
        return plain_value(text)
    return plain_value(number)


def json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """Metrics as JSON holds them (:func:`plain_value`); values of other types left out."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, int | float | str | bool) or v is None:
            out[str(k)[:MAX_TEXT]] = plain_value(v)
    return out


def shown(value: Any) -> str:
    """A metric's value in a message: a number as written (``nan``, ``inf`` too: the records
    keep them as text), anything else quoted."""
    if isinstance(value, str) and value in ("nan", "inf", "-inf"):
        return value
    return repr(value)


def final_values(metrics: dict[str, Any], names: list[str]) -> list[float] | str:
    """The objective values of a trial that ended with ``metrics`` (the last reported values
    updated by what it returned), or why it failed: ``missing_metric`` (with a did-you-mean
    over what it did report) or ``nan_metric``. A bare returned number (``__return__``) is the
    value of the single metric; ``metrics`` is updated in place to show that."""
    if RETURN_KEY in metrics and len(names) == 1 and names[0] not in metrics:
        metrics[names[0]] = metrics[RETURN_KEY]
    metrics.pop(RETURN_KEY, None)
    values = []
    for name in names:
        value = metrics.get(name)
        if value is None:
            return f"missing_metric: the trial did not report {name!r}{did_you_mean(name, metrics)}"
        if not is_finite_number(value):
            return f"nan_metric: {name} = {shown(value)} is not a finite number"
        values.append(float(value))
    return values


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
