"""Plots of a run's results, written as PNG files into ``<run>/plots/`` by ``sweepspec results``:

* ``history.png``: each finished trial's value in trial order (complete, pruned at its last
  report, failed as a tick on the axis) and the best so far: is the search still improving?
* ``params.png``: the value against each sampled parameter (log axis for log-scaled ones,
  categories side by side): where in the space are the good trials?
* ``pareto.png`` (two or more metrics): the first two metrics of every complete trial with the
  Pareto front joined up.

matplotlib is imported lazily (the ``plots`` extra) and drawn off-screen (Agg backend).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from sweepspec.records import TrialRecord, best_trials, is_finite_number

__all__ = ["PlotParam", "plot_results", "plots_available"]

MAX_PARAM_PANELS = 16


class PlotParam:
    """What a plot needs to know of a sampled parameter."""

    def __init__(self, path: str, log: bool, categorical: bool) -> None:
        self.path = path
        self.log = log
        self.categorical = categorical


def plots_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("matplotlib") is not None


def _number(value: Any) -> float | None:
    return float(value) if is_finite_number(value) else None


def plot_results(
    out_dir: Path,
    records: Sequence[TrialRecord],
    directions: Mapping[str, str],
    params: Sequence[PlotParam],
) -> list[Path]:
    """Draw the plots; returns the files written (none when no trial has a value yet)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    metric, mode = next(iter(directions.items()))
    valued = [r for r in records if _number(r.metrics.get(metric)) is not None]
    if not valued:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [_history(plt, out_dir, records, metric, mode)]
    panel = _params(plt, out_dir, valued, metric, mode, params)
    if panel is not None:
        written.append(panel)
    if len(directions) >= 2:
        pareto = _pareto(plt, out_dir, records, directions)
        if pareto is not None:
            written.append(pareto)
    return written


def _order(record: TrialRecord) -> tuple[int, str]:
    return (int(record.trial_id), "") if record.trial_id.isdigit() else (1 << 62, record.trial_id)


def _save(plt: Any, fig: Any, path: Path) -> Path:
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)  # a reader never sees half a file
    return path


def _history(
    plt: Any, out_dir: Path, records: Sequence[TrialRecord], metric: str, mode: str
) -> Path:
    ordered = sorted(records, key=_order)
    fig, ax = plt.subplots(figsize=(7, 4))
    xs: dict[str, list[int]] = {"COMPLETE": [], "PRUNED": []}
    ys: dict[str, list[float]] = {"COMPLETE": [], "PRUNED": []}
    failed: list[int] = []
    best_x: list[int] = []
    best_y: list[float] = []
    best: float | None = None
    for i, r in enumerate(ordered):
        value = _number(r.metrics.get(metric))
        if r.state == "FAILED":
            failed.append(i)
            continue
        if value is None or r.state not in xs:
            continue
        xs[r.state].append(i)
        ys[r.state].append(value)
        if r.state == "COMPLETE":
            if best is None or (value > best if mode == "max" else value < best):
                best = value
            best_x.append(i)
            best_y.append(best)
    ax.scatter(xs["COMPLETE"], ys["COMPLETE"], s=18, color="tab:blue", label="complete")
    if xs["PRUNED"]:
        ax.scatter(xs["PRUNED"], ys["PRUNED"], s=14, color="0.6", marker="x", label="pruned")
    if best_x:
        ax.step(best_x, best_y, where="post", color="tab:red", label=f"best so far ({mode})")
    if failed:
        low = ax.get_ylim()[0]
        ax.scatter(failed, [low] * len(failed), marker="|", color="black", label="failed")
    ax.set_xlabel("trial (in order)")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} by trial")
    ax.legend(loc="best", fontsize="small")
    return _save(plt, fig, out_dir / "history.png")


def _params(
    plt: Any,
    out_dir: Path,
    records: Sequence[TrialRecord],
    metric: str,
    mode: str,
    params: Sequence[PlotParam],
) -> Path | None:
    shown = list(params[:MAX_PARAM_PANELS])
    if not shown:
        return None
    cols = min(4, len(shown))
    rows = math.ceil(len(shown) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    values = [_number(r.metrics.get(metric)) for r in records]
    complete = [
        v for r, v in zip(records, values, strict=True) if v is not None and r.state == "COMPLETE"
    ]
    best = (
        (max if mode == "max" else min)(complete) if complete else None
    )  # a pruned value never wins
    for ax, param in zip(axes.flat, shown, strict=False):
        pairs: list[tuple[Any, float]] = [
            (r.params.get(param.path), v)
            for r, v in zip(records, values, strict=True)
            if v is not None and r.params.get(param.path) is not None
        ]
        colors = ["tab:red" if best is not None and v == best else "tab:blue" for _, v in pairs]
        if param.categorical:
            labels = sorted({repr(x) for x, _ in pairs})
            index = {label: i for i, label in enumerate(labels)}
            ax.scatter([index[repr(x)] for x, _ in pairs], [v for _, v in pairs], s=14, c=colors)
            ax.set_xticks(range(len(labels)), [label.strip("'") for label in labels], fontsize=7)
        else:
            ax.scatter([float(x) for x, _ in pairs], [v for _, v in pairs], s=14, c=colors)
            if param.log:
                ax.set_xscale("log")
        ax.set_xlabel(param.path, fontsize=8)
        ax.set_ylabel(metric, fontsize=8)
    for ax in list(axes.flat)[len(shown) :]:
        ax.set_visible(False)
    title = f"{metric} against each parameter (best in red)"
    if len(params) > len(shown):
        title += f"; first {len(shown)} of {len(params)} parameters"
    fig.suptitle(title, fontsize=10)
    return _save(plt, fig, out_dir / "params.png")


def _pareto(
    plt: Any, out_dir: Path, records: Sequence[TrialRecord], directions: Mapping[str, str]
) -> Path | None:
    (m1, mode1), (m2, mode2) = list(directions.items())[:2]
    done = [
        r
        for r in records
        if r.state == "COMPLETE"
        and _number(r.metrics.get(m1)) is not None
        and _number(r.metrics.get(m2)) is not None
    ]
    if not done:
        return None
    front = sorted(best_trials(done, directions), key=lambda r: r.metrics[m1])
    fig, ax = plt.subplots(figsize=(6, 4.5))
    ax.scatter([r.metrics[m1] for r in done], [r.metrics[m2] for r in done], s=16, label="trial")
    ax.plot(
        [r.metrics[m1] for r in front],
        [r.metrics[m2] for r in front],
        "o-",
        color="tab:red",
        label="Pareto front",
    )
    ax.set_xlabel(f"{m1} ({mode1})")
    ax.set_ylabel(f"{m2} ({mode2})")
    ax.legend(loc="best", fontsize="small")
    return _save(plt, fig, out_dir / "pareto.png")
