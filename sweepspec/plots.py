"""Plots of a run's results, written as PNG files into ``<run>/plots/`` by ``sweepspec results``,
whichever backend ran: the trial records (and every trial's reports) are turned into an
in-memory Optuna study (:func:`build_study`, the spec's own distributions) so that Optuna's
matplotlib visualizations draw the importances, parallel coordinates, slice plots, Pareto front
and timeline; the histories and learning curves are drawn here (Optuna's leave pruned and
failed trials out).

* ``history.png``: each trial's value in trial order, the best so far, pruned trials apart
  (at their last report, never stretching the axis) and failed ones as ticks on the axis;
  ``history_time.png``: the same against wall time since the run's first trial started.
* ``curves.png``: every trial's learning curve (its reports), a pruned trial's last point marked.
* ``importances.png``: parameter importances (fANOVA; at least two complete trials and two
  varying parameters).
* ``parallel.png``, ``params.png`` (``params-2.png``, ...: four parameters a figure): parallel
  coordinates and slice plots.
* ``pareto.png`` (several metrics): the Pareto front; ``timeline.png``: when each trial ran.

matplotlib and optuna are imported lazily (the ``plots`` and ``optuna`` extras); drawing is
off-screen (Agg). :func:`draw` returns the figures (tests read their axes), :func:`write_plots`
saves them.
"""

from __future__ import annotations

import ast
import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sweepspec.errors import Problem, SweepspecError
from sweepspec.records import TrialRecord, best_trials, is_finite_number
from sweepspec.run.history import read_reports
from sweepspec.run.rundir import RunDir
from sweepspec.search.params import encode_params
from sweepspec.search.plan import DIRECTIONS, compile_search
from sweepspec.search.warm_start import distribution
from sweepspec.spec.root import Spec

__all__ = [
    "PLOT_TITLES",
    "Drawn",
    "Plots",
    "RunView",
    "build_study",
    "draw",
    "plots_available",
    "run_view",
    "write_plots",
]

#: Every plot by file stem, in the order a report shows them, with its caption.
PLOT_TITLES = {
    "history": "Value by trial, and the best so far",
    "history_time": "Value by wall time since the first trial started",
    "curves": "Learning curves: every report of every trial",
    "importances": "Parameter importances (fANOVA)",
    "parallel": "Parallel coordinates: each complete trial as a line",
    "params": "Value against each parameter (slice plots)",
    "pareto": "Pareto front",
    "timeline": "Timeline: when each trial ran",
}
SLICE_PANELS = 4  # parameters in one slice figure
MAX_PARALLEL = 12  # parameters in the parallel coordinates
MAX_CURVE_METRICS = 4
DPI = 100
#: a legend beside the axes, never over the points
LEGEND: dict[str, Any] = {
    "loc": "upper center",
    "bbox_to_anchor": (0.5, -0.16),
    "ncol": 3,
    "fontsize": "small",
    "framealpha": 0.9,
}
COMPLETE_COLOR, BEST_COLOR, PRUNED_COLOR, FAILED_COLOR = "tab:blue", "tab:red", "0.45", "black"


@dataclass
class Drawn:
    """A figure and the file stem it is saved under."""

    name: str
    figure: Any
    #: laid out with ``tight_layout`` (not where Optuna's colour bar takes space from the axes)
    tight: bool = True


@dataclass
class Plots:
    """What :func:`write_plots` wrote, and why a plot was left out."""

    files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RunView:
    """What the plots draw: the records in trial order, each one's encoded params and its
    reports, the metrics with their directions and the distributions (widened to the values
    seen: a PBT mutation may leave the spec's range)."""

    records: tuple[TrialRecord, ...]
    directions: dict[str, str]
    distributions: dict[str, Any]
    params: dict[str, dict[str, Any]]
    reports: dict[str, list[dict[str, Any]]]

    @property
    def primary(self) -> tuple[str, str]:
        return next(iter(self.directions.items()))

    def complete(self) -> list[TrialRecord]:
        return [
            r
            for r in self.records
            if r.state == "COMPLETE"
            and all(is_finite_number(r.metrics.get(m)) for m in self.directions)
        ]

    def last_value(self, record: TrialRecord) -> float | None:
        """The primary metric's value as the record holds it (a complete trial's final value,
        a pruned one's last report), else the last report of it."""
        metric = self.primary[0]
        value = record.metrics.get(metric)
        if is_finite_number(value):
            return float(value)
        for item in reversed(self.reports.get(record.trial_id, [])):
            if is_finite_number(item.get(metric)):
                return float(item[metric])
        return None


def plots_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(m) is not None for m in ("matplotlib", "optuna"))


# -- what to draw ------------------------------------------------------------------------------


def _order(record: TrialRecord) -> tuple[int, str]:
    return (int(record.trial_id), "") if record.trial_id.isdigit() else (1 << 62, record.trial_id)


def run_view(rundir: RunDir | None, spec: Spec, records: Sequence[TrialRecord]) -> RunView:
    """The view of a run of ``spec``: distributions from its suggest table."""
    plan = compile_search(spec)
    dists = {path: distribution(s) for path, s in plan.suggest.items()}
    params = {r.trial_id: encode_params(plan.suggest, r.params) for r in records}
    return _view(rundir, records, dict(plan.objectives), dists, params)


def _view(
    rundir: RunDir | None,
    records: Sequence[TrialRecord],
    directions: dict[str, str],
    dists: dict[str, Any],
    params: dict[str, dict[str, Any]],
) -> RunView:
    ordered = tuple(sorted(records, key=_order))
    fitted = {
        path: _fit(dist, [p[path] for p in params.values() if p.get(path) is not None])
        for path, dist in dists.items()
    }
    reports = {r.trial_id: read_reports(rundir, r.trial_id) for r in ordered} if rundir else {}
    return RunView(ordered, directions, fitted, params, reports)


def _contains(dist: Any, value: Any) -> bool:
    try:
        return bool(dist._contains(dist.to_internal_repr(value)))
    except (ValueError, TypeError):
        return False


def _fit(dist: Any, values: Sequence[Any]) -> Any:
    """``dist`` widened to hold ``values``; a categorical of numbers in numeric order (a
    choice written ``[128, 32, 64]`` is drawn 32, 64, 128)."""
    import optuna.distributions as d

    if isinstance(dist, d.CategoricalDistribution):
        choices = list(dict.fromkeys([*dist.choices, *values]))
        if all(is_finite_number(c) for c in choices):
            choices.sort()
        return d.CategoricalDistribution(choices)
    outside = [v for v in values if not _contains(dist, v)]
    if not outside:
        return dist
    numbers = [v for v in outside if is_finite_number(v)]
    if not numbers:
        return dist
    low, high = min(dist.low, *numbers), max(dist.high, *numbers)
    log = dist.log and low > 0
    if isinstance(dist, d.IntDistribution) and all(isinstance(v, int) for v in numbers):
        return d.IntDistribution(int(low), int(high), log=log)
    return d.FloatDistribution(float(low), float(high), log=log)


# -- the study ---------------------------------------------------------------------------------


def _moment(text: str | None) -> datetime | None:
    """An ISO 8601 UTC time as the naive local time Optuna keeps."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).astimezone().replace(tzinfo=None)
    except ValueError:
        return None


def build_study(view: RunView) -> Any:
    """An in-memory ``optuna.Study`` of the run, one Optuna trial a record in trial order
    (trial number = position): COMPLETE with its values, PRUNED with its reports as
    intermediate values, FAILED as FAIL, RUNNING; params in the view's distributions."""
    import optuna

    with _quiet():
        study = optuna.create_study(directions=[DIRECTIONS[m] for m in view.directions.values()])
        for record in view.records:
            study.add_trial(_frozen(view, record))
    return study


def _frozen(view: RunView, record: TrialRecord) -> Any:
    from optuna.trial import TrialState, create_trial

    state = {"COMPLETE": TrialState.COMPLETE, "PRUNED": TrialState.PRUNED}.get(
        record.state, TrialState.RUNNING if record.state == "RUNNING" else TrialState.FAIL
    )
    values = [record.metrics.get(m) for m in view.directions]
    if state == TrialState.COMPLETE and not all(is_finite_number(v) for v in values):
        state = TrialState.FAIL
    metric = view.primary[0]
    steps = {
        int(item["step"]): float(item[metric])
        for item in view.reports.get(record.trial_id, [])
        if is_finite_number(item.get(metric))
    }
    last = view.last_value(record)
    if state == TrialState.PRUNED and not steps and last is not None:
        steps = {record.iterations: last}
    params = {
        k: v
        for k, v in view.params.get(record.trial_id, {}).items()
        if k in view.distributions and _contains(view.distributions[k], v)
    }
    trial = create_trial(
        state=state,
        values=[float(v) for v in values if is_finite_number(v)]
        if state == TrialState.COMPLETE
        else None,
        params=params,
        distributions={k: view.distributions[k] for k in params},
        intermediate_values=steps,
        user_attrs={"trial_id": record.trial_id},
    )
    start, end = _moment(record.started_at), _moment(record.ended_at)
    if start is not None:
        trial.datetime_start = start
    if end is not None and state.is_finished():
        trial.datetime_complete = max(end, start or end)
    return trial


@contextmanager
def _quiet() -> Iterator[None]:
    """No Optuna log lines ("A new study created in memory") nor experimental warnings."""
    import optuna

    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            # a parameter that took one value: matplotlib widens the axis itself
            warnings.filterwarnings("ignore", "Attempting to set identical", UserWarning)
            yield
    finally:
        optuna.logging.set_verbosity(level)


# -- drawing -----------------------------------------------------------------------------------


def draw(view: RunView) -> tuple[list[Drawn], list[str]]:
    """Every plot the run has the data for, and a note for each one left out. The caller
    closes the figures (:func:`write_plots` does)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    notes: list[str] = []
    drawn: list[Drawn] = []
    if not any(view.last_value(r) is not None for r in view.records):
        return [], ["no plots: no trial has a value yet"]
    study = build_study(view)
    steps: list[Callable[[RunView, Any, list[str]], list[Drawn]]] = [
        _history,
        _history_time,
        _curves,
        _importances,
        _parallel,
        _slices,
        _pareto,
        _timeline,
    ]
    # metric names are text, not mathtext ("cost $" twice would be parsed, and may not parse);
    # the caller closes the figures (and may hold many)
    rc = plt.rc_context({"text.parse_math": False, "figure.max_open_warning": 0})
    with plt.style.context("ggplot"), rc, _quiet():
        try:
            for step in steps:
                drawn.extend(step(view, study, notes))
            for item in drawn:
                _readable(item.figure, item.tight)
        except BaseException:
            for item in drawn:
                plt.close(item.figure)
            raise
    return drawn, notes


def write_plots(rundir: RunDir, spec: Spec, records: Sequence[TrialRecord]) -> Plots:
    """Draw the plots of a run of ``spec`` into ``rundir.plots``; stale plots of an earlier
    call that are not drawn this time are removed."""
    return _write(rundir.plots, run_view(rundir, spec, records))


def _write(out_dir: Path, view: RunView) -> Plots:
    import matplotlib.pyplot as plt

    with warnings.catch_warnings():
        # matplotlib's "identical low and high ylims" for a parameter with one value, and
        # the like: what a plot lacks is said in ``notes``, not as a library's warning
        warnings.simplefilter("ignore", UserWarning)
        drawn, notes = draw(view)
    out = Plots(notes=notes)
    try:
        if drawn:
            out_dir.mkdir(parents=True, exist_ok=True)
        for item in drawn:
            path = out_dir / f"{item.name}.png"
            tmp = out_dir / f".{item.name}.tmp.png"
            # a figure laid out by tight_layout is saved as it is (bbox_inches="tight" draws
            # twice)
            cut = {} if item.tight else {"bbox_inches": "tight", "pad_inches": 0.15}
            item.figure.savefig(tmp, dpi=DPI, **cut)
            tmp.replace(path)  # a reader never sees half a file
            out.files.append(path)
    except OSError as exc:
        raise SweepspecError(
            Problem(f"cannot write the plots into {out_dir}: {exc.strerror or exc}", code="io")
        ) from None
    finally:
        for item in drawn:
            plt.close(item.figure)
    if out_dir.is_dir():
        for old in out_dir.glob("*.png"):
            if old not in out.files and old.stem.split("-")[0] in PLOT_TITLES:
                old.unlink(missing_ok=True)
    return out


def _target(view: RunView) -> tuple[Callable[[Any], float] | None, str]:
    """Optuna's ``target`` for a plot of the primary metric (None: the study's single value)."""
    metric, mode = view.primary
    if len(view.directions) == 1:
        return None, f"{metric} ({mode})"
    return (lambda t: float(t.values[0])), f"{metric} ({mode}; first of {len(view.directions)})"


# -- history -----------------------------------------------------------------------------------


def _history(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    """Drawn here, not by Optuna's ``plot_optimization_history``: that one leaves pruned and
    failed trials out and draws the best value as a line without markers, which vanishes
    when a single trial is complete."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

    label = _target(view)[1]
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    _value_panel(ax, [(float(i), r) for i, r in enumerate(view.records)], view)
    ids = [r.trial_id for r in view.records]
    ticks = MaxNLocator(integer=True, nbins=10).tick_values(0, max(len(ids) - 1, 0))
    ax.xaxis.set_major_locator(FixedLocator([t for t in ticks if 0 <= t < max(len(ids), 1)]))
    if ids != [str(i) for i in range(len(ids))]:  # trial ids that are not their positions
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda x, _: ids[int(x)] if 0 <= int(x) < len(ids) else "")
        )
    ax.set_xlim(-0.6, max(len(ids) - 0.4, 0.6))
    ax.set_xlabel("trial")
    ax.set_title(f"{label} by trial")
    return [Drawn("history", fig)]


def _history_time(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    import matplotlib.pyplot as plt

    starts = [m for m in (_moment(r.started_at) for r in view.records) if m is not None]
    ends = [(_moment(r.ended_at), r) for r in view.records if r.state != "RUNNING"]
    timed = [(e, r) for e, r in ends if e is not None]
    if not starts or not timed:
        notes.append("history by wall time: the trials have no start and end times")
        return []
    first = min(starts)
    span = max((e - first).total_seconds() for e, _ in timed)
    unit, scale = ("s", 1.0) if span < 180 else ("min", 60.0) if span < 3 * 3600 else ("h", 3600.0)
    fig, ax = plt.subplots(figsize=(8.5, 4.6))
    points = [
        ((e - first).total_seconds() / scale, r) for e, r in sorted(timed, key=lambda p: p[0])
    ]
    _value_panel(ax, points, view)
    ax.set_xlim(left=0.0)  # the run's start
    ax.set_xlabel(f"wall time since the first trial started ({unit})")
    ax.set_title(f"{_target(view)[1]} by wall time (when each trial ended)")
    return [Drawn("history_time", fig)]


def _value_panel(ax: Any, points: Sequence[tuple[float, TrialRecord]], view: RunView) -> None:
    """Complete trials, the best so far (one metric), pruned trials at their last report
    (clamped to the axis' edge, never stretching it) and failed ones as ticks on the axis."""
    metric, mode = view.primary
    values = [(x, r.state, view.last_value(r)) for x, r in points]
    complete = [(x, v) for x, state, v in values if state == "COMPLETE" and v is not None]
    pruned = [(x, v) for x, state, v in values if state == "PRUNED" and v is not None]
    failed = [x for x, state, _ in values if state == "FAILED"]
    low, high = _padded([v for _, v in complete] or [v for _, v in pruned])
    ax.set_ylim(low, high)
    # the marks at the axis' edges are not in data coordinates: autoscaling misses them
    ax.set_xlim(*_padded([x for x, _ in points], 0.03))
    handles: list[Any] = []
    if complete:
        ax.scatter(*zip(*complete, strict=True), s=28, color=COMPLETE_COLOR, zorder=3)
        handles.append(_proxy("o", COMPLETE_COLOR, f"complete ({len(complete)})"))
    if complete and len(view.directions) == 1:
        handles.append(_draw_best(ax, complete, mode, max(x for x, _ in points)))
    handles += _draw_pruned(ax, pruned, low, high)
    if failed:
        _edge_marks(ax, failed, 0.0, "|", FAILED_COLOR, s=120)
        handles.append(_proxy("|", FAILED_COLOR, f"failed ({len(failed)})"))
    ax.set_ylabel(metric)
    if handles:
        ax.legend(handles=handles, **LEGEND)


def _draw_best(ax: Any, complete: Sequence[tuple[float, float]], mode: str, last_x: float) -> Any:
    from matplotlib.lines import Line2D

    xs, ys = _best_so_far(complete, mode, last_x)
    ax.plot(xs, ys, drawstyle="steps-post", color=BEST_COLOR, lw=1.8, zorder=4)
    steps = set(zip(xs, ys, strict=True))
    marks = [(x, y) for x, y in complete if (x, y) in steps]
    ax.scatter(*zip(*marks, strict=True), s=60, facecolors="none", edgecolors=BEST_COLOR, zorder=5)
    return Line2D([], [], color=BEST_COLOR, marker="o", mfc="none", label=f"best so far ({mode})")


def _draw_pruned(
    ax: Any, pruned: Sequence[tuple[float, float]], low: float, high: float
) -> list[Any]:
    """Pruned trials inside the axis as crosses; beyond it, at its edge, pointing out."""
    inside = [(x, v) for x, v in pruned if low <= v <= high]
    above = [x for x, v in pruned if v > high]
    below = [x for x, v in pruned if v < low]
    handles = []
    if inside:
        ax.scatter(*zip(*inside, strict=True), s=30, marker="x", color=PRUNED_COLOR, zorder=3)
        handles.append(_proxy("x", PRUNED_COLOR, f"pruned: last report ({len(inside)})"))
    _edge_marks(ax, above, 0.975, "^", PRUNED_COLOR)
    _edge_marks(ax, below, 0.025, "v", PRUNED_COLOR)
    if above or below:
        label = f"pruned, beyond the axis ({len(above) + len(below)})"
        handles.append(_proxy("^" if above else "v", PRUNED_COLOR, label))
    return handles


def _edge_marks(
    ax: Any, xs: Sequence[float], y: float, marker: str, color: str, s: float = 34
) -> None:
    """Marks at data ``xs`` and at height ``y`` of the axes (0 bottom, 1 top)."""
    if xs:
        ax.scatter(
            xs,
            [y] * len(xs),
            s=s,
            marker=marker,
            color=color,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            zorder=3,
        )


def _proxy(marker: str, color: str, label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], ls="none", marker=marker, color=color, mec=color, label=label)


def _best_so_far(
    points: Sequence[tuple[float, float]], mode: str, last_x: float
) -> tuple[list[float], list[float]]:
    """The best-so-far step line through ``points`` (in x order), carried on to ``last_x`` so
    that a single complete trial still shows as a line and a point."""
    xs: list[float] = []
    ys: list[float] = []
    best: float | None = None
    for x, v in sorted(points):
        if best is None or (v > best if mode == "max" else v < best):
            best = v
            xs.append(x)
            ys.append(v)
    if best is not None and last_x > xs[-1]:
        xs.append(last_x)
        ys.append(best)
    return xs, ys


def _padded(values: Sequence[float], share: float = 0.08) -> tuple[float, float]:
    if not values:
        return 0.0, 1.0
    low, high = min(values), max(values)
    pad = (high - low) * share or (abs(low) * 0.05 or 0.5)
    return low - pad, high + pad


# -- learning curves ---------------------------------------------------------------------------


def _curves(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    import matplotlib.pyplot as plt

    metrics = [m for m in view.directions if any(m in i for v in view.reports.values() for i in v)]
    if not metrics:
        notes.append("learning curves: no trial reported intermediate values")
        return []
    metrics = metrics[:MAX_CURVE_METRICS]
    fig, axes = plt.subplots(
        len(metrics), 1, figsize=(8.5, 3.6 * len(metrics) + 0.6), squeeze=False
    )
    best = {r.trial_id for r in best_trials(view.records, view.directions)}
    for ax, metric in zip(axes[:, 0], metrics, strict=True):
        _curve_panel(ax, view, metric, best)
    fig.suptitle("learning curves (× = where the scheduler stopped a pruned trial)")
    return [Drawn("curves", fig)]


CURVE_STYLE: dict[str, dict[str, Any]] = {
    "best": {"color": BEST_COLOR, "lw": 2.2, "zorder": 5},
    "front": {"color": BEST_COLOR, "alpha": 0.8, "lw": 1.3, "zorder": 5},
    "COMPLETE": {"color": COMPLETE_COLOR, "alpha": 0.55, "lw": 1.2},
    "PRUNED": {"color": PRUNED_COLOR, "alpha": 0.7, "lw": 1.0},
    "FAILED": {"color": FAILED_COLOR, "alpha": 0.6, "lw": 1.0, "ls": ":"},
    "RUNNING": {"color": "tab:green", "alpha": 0.8, "lw": 1.0, "ls": "--"},
}
CURVE_LABELS = {
    "best": "best trial",
    "front": "on the Pareto front",
    "COMPLETE": "complete",
    "PRUNED": "pruned (× its last report)",
    "FAILED": "failed",
    "RUNNING": "running",
}


def _curve_panel(ax: Any, view: RunView, metric: str, best: set[str]) -> None:
    top = "best" if len(view.directions) == 1 else "front"
    seen: dict[str, int] = {}
    values: list[float] = []
    for r in view.records:
        pts = [
            (i["step"], float(i[metric]))
            for i in view.reports.get(r.trial_id, [])
            if is_finite_number(i.get(metric))
        ]
        if not pts:
            continue
        xs, ys = zip(*pts, strict=True)
        values.extend(ys)
        kind = top if r.trial_id in best else r.state if r.state in CURVE_STYLE else "FAILED"
        ax.plot(xs, ys, marker="o" if len(xs) == 1 else None, ms=4, **CURVE_STYLE[kind])
        if r.state == "PRUNED":
            ax.scatter([xs[-1]], [ys[-1]], marker="x", s=45, color="black", lw=1.5, zorder=6)
        seen[kind] = seen.get(kind, 0) + 1
    if values and min(values) > 0 and max(values) / min(values) > 1000:
        ax.set_yscale("log")  # a first report far off the rest flattens every curve
    handles = [
        _line(CURVE_STYLE[k], f"{CURVE_LABELS[k]} ({seen[k]})") for k in CURVE_STYLE if k in seen
    ]
    ax.legend(handles=handles, **LEGEND)
    ax.set_xlabel("step (training_iteration)")
    ax.set_ylabel(f"{metric} ({view.directions[metric]})")


def _line(opts: Mapping[str, Any], label: str) -> Any:
    from matplotlib.lines import Line2D

    return Line2D([], [], label=label, **{k: v for k, v in opts.items() if k != "zorder"})


# -- Optuna's plots of the space ---------------------------------------------------------------


def _shown_params(view: RunView) -> list[str]:
    """The parameters that some complete trial has, in the spec's order."""
    done = {r.trial_id for r in view.complete()}
    return [p for p in view.distributions if any(p in view.params.get(t, {}) for t in done)]


def _varying(view: RunView, params: Sequence[str]) -> list[str]:
    done = [view.params.get(r.trial_id, {}) for r in view.complete()]
    if not done:
        return []
    return [p for p in params if all(p in d for d in done) and len({repr(d[p]) for d in done}) > 1]


def _importances(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    from optuna.importance import FanovaImportanceEvaluator
    from optuna.visualization.matplotlib import plot_param_importances

    varying = _varying(view, _shown_params(view))
    if len(view.complete()) < 2 or len(varying) < 2:
        notes.append(
            "parameter importances: need at least 2 complete trials and 2 parameters that vary "
            f"among them (have {len(view.complete())} and {len(varying)})"
        )
        return []
    target, label = _target(view)
    ax: Any = plot_param_importances(
        study,
        evaluator=FanovaImportanceEvaluator(seed=0),
        params=varying,
        target=target,
        target_name=label,
    )
    ax.figure.set_size_inches(8.5, max(3.0, 0.45 * len(varying) + 1.6))
    ax.set_title("", loc="left")  # Optuna's title, replaced
    ax.set_title(f"importance of each parameter for {label}")
    return [Drawn("importances", ax.figure)]


def _parallel(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    from optuna.visualization.matplotlib import plot_parallel_coordinate

    params = _shown_params(view)[:MAX_PARALLEL]
    if len(view.complete()) < 2 or not params:
        notes.append("parallel coordinates: need 2 complete trials with sampled parameters")
        return []
    target, label = _target(view)
    ax: Any = plot_parallel_coordinate(study, params=params, target=target, target_name=label)
    fig = ax.figure
    fig.set_size_inches(max(8.5, 1.25 * (len(params) + 1) + 2), 5.2)
    for text in ax.get_xticklabels():
        text.set_rotation(25)
        text.set_horizontalalignment("right")
    for twin in fig.axes:
        if twin is not ax and twin.get_label() != "<colorbar>":
            twin.grid(False)  # one grid, of the first axis: not one per parameter
            for text in twin.get_yticklabels():
                text.set_bbox({"facecolor": "white", "alpha": 0.75, "edgecolor": "none", "pad": 1})
    ax.set_title(f"parallel coordinates ({label})", y=1.04)
    return [Drawn("parallel", fig, tight=False)]


def _slices(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    import numpy as np
    from optuna.visualization.matplotlib import plot_slice

    params = _shown_params(view)
    if not params:
        notes.append("slice plots: no complete trial with sampled parameters")
        return []
    target, label = _target(view)
    params = sorted(params)  # Optuna draws a figure's parameters in name order
    count = math.ceil(len(params) / SLICE_PANELS)
    size = math.ceil(len(params) / count)  # 5 parameters: 3 + 2, not 4 + 1
    chunks = [params[i : i + size] for i in range(0, len(params), size)]
    out = []
    for n, chunk in enumerate(chunks, start=1):
        drawn: Any = plot_slice(study, params=chunk, target=target, target_name=label)
        axes = np.atleast_1d(drawn)
        fig = axes[0].figure
        fig.set_size_inches(max(4.4 * len(chunk), 6.5), 4.2)
        for ax in axes:
            ax.set_title("")
            _categories_unquoted(ax, view)
            _one_value_centred(ax, view)
        _integer_colorbars(fig)
        part = f" ({n}/{len(chunks)})" if len(chunks) > 1 else ""
        fig.suptitle(f"{label} against each parameter{part}; colour: trial number")
        out.append(Drawn("params" if n == 1 else f"params-{n}", fig, tight=False))
    return out


def _one_value_centred(ax: Any, view: RunView) -> None:
    """A numeric parameter that every complete trial has the same value of: the axis around
    that value (matplotlib widens an empty range to a decade, the point at its edge)."""
    path = ax.get_xlabel()
    if hasattr(view.distributions.get(path), "choices"):
        return
    done = {r.trial_id for r in view.complete()}
    values = {view.params.get(t, {}).get(path) for t in done}
    value = values.pop() if len(values) == 1 else None
    if not is_finite_number(value):
        return
    v = float(value)
    if ax.get_xscale() == "log" and v > 0:
        ax.set_xlim(v / 1.5, v * 1.5)
    else:
        pad = abs(v) * 0.1 or 0.5
        ax.set_xlim(v - pad, v + pad)


def _integer_colorbars(fig: Any) -> None:
    """A colour bar of trial numbers ticks at whole numbers (not 0.9, 0.925, ...)."""
    from matplotlib.ticker import MaxNLocator

    for ax in fig.axes:
        bar = getattr(ax, "_colorbar", None)
        if bar is not None and ax.get_ylabel() == "Trial":
            bar.locator = MaxNLocator(integer=True, min_n_ticks=1)


def _categories_unquoted(ax: Any, view: RunView) -> None:
    """Optuna labels a category by ``repr``: ``'adam'`` becomes ``adam``."""
    from matplotlib.ticker import FuncFormatter

    dist = view.distributions.get(ax.get_xlabel())
    if dist is None or not hasattr(dist, "choices"):
        return
    ax.set_xlim(-0.5, len(ax.xaxis.get_ticklocs()) - 0.5)  # the outer points off the frame
    old = ax.xaxis.get_major_formatter()
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, pos: _unquote(old(x, pos))))
    if max((len(str(c)) for c in dist.choices), default=0) * len(dist.choices) > 28:
        ax.tick_params(axis="x", labelrotation=25)


def _unquote(text: str) -> str:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        try:
            return str(ast.literal_eval(text))
        except (ValueError, SyntaxError):
            return text
    return text


def _pareto(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    from optuna.visualization.matplotlib import plot_pareto_front

    if len(view.directions) < 2:
        return []
    if not view.complete():
        notes.append("Pareto front: no complete trial yet")
        return []
    names = [f"{m} ({mode})" for m, mode in view.directions.items()]
    ax: Any
    if len(names) <= 3:
        ax = plot_pareto_front(study, target_names=names)
    else:
        notes.append(f"Pareto front: the first two of {len(names)} metrics are drawn")
        ax = plot_pareto_front(
            study, target_names=names[:2], targets=lambda t: (t.values[0], t.values[1])
        )
    ax.figure.set_size_inches(7.5, 5.6)
    ax.set_title("Pareto front (red: not dominated by any other complete trial)")
    return [Drawn("pareto", ax.figure)]


def _timeline(view: RunView, study: Any, notes: list[str]) -> list[Drawn]:
    from optuna.visualization.matplotlib import plot_timeline

    untimed = [
        r for r in view.records if not r.started_at or (r.state != "RUNNING" and not r.ended_at)
    ]
    if untimed:
        notes.append(f"timeline: {len(untimed)} trial(s) have no start or end time")
        return []
    ax: Any = plot_timeline(study)
    ax.figure.set_size_inches(9.5, min(12.0, max(3.2, 0.22 * len(view.records) + 1.8)))
    ax.set_title("when each trial ran")
    return [Drawn("timeline", ax.figure)]


# -- readable axes -----------------------------------------------------------------------------


def _readable(fig: Any, tight: bool = True) -> None:
    """Log axes labelled with a few plain numbers (``50 100 200``, ``1e-05 0.001``) instead of
    every minor tick in scientific notation, which overlap on a narrow axis."""
    for ax in fig.axes:
        for axis in (ax.xaxis, ax.yaxis):
            if axis.get_scale() == "log":
                _plain_log_axis(axis)
    if not tight:
        return
    fig.tight_layout()


def _plain_log_axis(axis: Any) -> None:
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    low, high = sorted(axis.get_view_interval())
    ticks = log_ticks(low, high)
    if not ticks:
        return
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: tick_text(v)))
    axis.set_minor_formatter(NullFormatter())


def log_ticks(low: float, high: float, most: int = 5) -> list[float]:
    """At most ``most`` round ticks (1, 2, 5 times a power of ten; then decades, then every
    other decade) between ``low`` and ``high`` (> 0); at least two where the range allows."""
    if not (low > 0 and high > low and math.isfinite(high)):
        return []
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))

    def inside(mantissas: Sequence[int], every: int) -> list[float]:
        out = []
        for k in range(first, last + 1):
            for m in mantissas:
                v = float(f"{m}e{k}")
                if (k - first) % every == 0 and low * (1 - 1e-9) <= v <= high * (1 + 1e-9):
                    out.append(v)
        return out

    for mantissas, every in [((1, 2, 5), 1), ((1, 3), 1), ((1,), 1), ((1,), 2), ((1,), 3)]:
        ticks = inside(mantissas, every)
        if len(ticks) <= most:
            if len(ticks) >= 2:
                return ticks
            break
    from matplotlib.ticker import MaxNLocator

    linear = MaxNLocator(nbins=4, steps=[1, 2, 2.5, 5, 10]).tick_values(low, high)
    return [float(v) for v in linear if low <= v <= high] or inside((1,), 1)


def tick_text(value: float) -> str:
    """A tick as a person writes it: ``128``, ``0.5``, ``1e-05``."""
    if value == int(value) and abs(value) < 1e6:
        return str(int(value))
    return f"{value:g}"
