"""The plots of ``sweepspec results`` (:mod:`sweepspec.plots`), drawn with real matplotlib and
Optuna from hand-built trial records and reports files (as the Ray backend leaves them: no
Optuna study on disk) and from a tiny real sweep on the Optuna backend."""

from __future__ import annotations

import json
import random
import subprocess
import sys
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sweepspec.load import load_spec
from sweepspec.plots import (
    Drawn,
    build_study,
    draw,
    log_ticks,
    run_view,
    tick_text,
    write_plots,
)
from sweepspec.records import TrialRecord
from sweepspec.run.history import append_report
from sweepspec.run.rundir import RunDir
from sweepspec.spec.read import LoadedSpec
from tests.builders import REPO, env, run_ok, spec, write_spec

PNG = b"\x89PNG\r\n\x1a\n"

SPACE = {
    "lr": {"loguniform": [1.0e-5, 1.0e-1]},
    "hidden": {"int": [32, 512], "log": True},
    "batch_size": {"choice": [128, 32, 64]},
    "optimizer": {"choice": ["adam", "sgd"]},
    "dropout": {"uniform": [0.0, 0.5]},
}
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def iso(seconds: float) -> str:
    return (
        (T0 + timedelta(seconds=seconds)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def load(tmp_path: Path, **sections: Any) -> LoadedSpec:
    data = spec("plotted", **{"space": SPACE, **sections})
    return load_spec(write_spec(tmp_path, data), feasibility=False)


def fake_run(
    tmp_path: Path,
    states: Sequence[str],
    metrics: Sequence[str] = ("loss",),
    seed: int = 0,
) -> tuple[RunDir, list[TrialRecord]]:
    """Records of trials in ``states`` (in trial order) over :data:`SPACE`, with a reports file
    each (a learning curve; a pruned trial stops early, high above the complete ones), start
    and end times two at a time, as the Ray backend leaves them (no study on disk)."""
    rng = random.Random(seed)
    rundir = RunDir(tmp_path / "runs" / "plotted")
    records = []
    for i, state in enumerate(states):
        params = {
            "lr": 10 ** rng.uniform(-5, -1),
            "hidden": round(2 ** rng.uniform(5, 9)),
            "batch_size": rng.choice([128, 32, 64]),
            "optimizer": rng.choice(["adam", "sgd"]),
            "dropout": rng.uniform(0, 0.5),
        }
        final = 0.1 + (abs(params["lr"] - 3e-3) * 50) + (0.05 if params["batch_size"] == 128 else 0)
        steps = {"COMPLETE": 10, "PRUNED": 2 + i % 3, "FAILED": 1 + i % 2, "RUNNING": 4}[state]
        last: dict[str, float] = {}
        for step in range(1, steps + 1):
            last = {m: (final + 2.0 / step) * (k + 1) for k, m in enumerate(metrics)}
            append_report(rundir, str(i), step, 0.5 * step, last)
        start = 30.0 * (i // 2)
        records.append(
            TrialRecord(
                trial_id=str(i),
                state=state,
                metrics=dict(last) if state in ("COMPLETE", "PRUNED") else {},
                params=params,
                iterations=steps,
                duration_s=3.0 * steps,
                error="ValueError: <b>boom</b> & more" if state == "FAILED" else None,
                started_at=iso(start),
                ended_at=None if state == "RUNNING" else iso(start + 3.0 * steps),
            )
        )
    return rundir, records


def by_name(drawn: Sequence[Drawn]) -> dict[str, Any]:
    return {d.name: d.figure for d in drawn}


def close(drawn: Sequence[Drawn]) -> None:
    import matplotlib.pyplot as plt

    for d in drawn:
        plt.close(d.figure)


def labels(fig: Any, axis: str, xlabel: str | None = None) -> list[list[str]]:
    """The tick labels a reader sees on each axes of ``fig`` (whose x label is ``xlabel``),
    after a draw; each list checked for labels that overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    out = []
    for ax in fig.axes:
        if xlabel is not None and ax.get_xlabel() != xlabel:
            continue
        texts = [
            t
            for t in (ax.get_xticklabels() if axis == "x" else ax.get_yticklabels())
            if t.get_visible() and t.get_text()
        ]
        boxes = [t.get_window_extent(renderer) for t in texts]
        for a in range(len(boxes)):
            for b in range(a + 1, len(boxes)):
                assert not boxes[a].overlaps(boxes[b]), [t.get_text() for t in texts]
        out.append([t.get_text() for t in texts])
    return out


#: a metric name that is neither HTML nor mathtext
COST = "<b>cost</b> $x^$"


def trade_off(records: Sequence[TrialRecord]) -> None:
    """A lower loss costs more (and every third trial costs more than it needs to)."""
    for r in records:
        if "loss" in r.metrics:
            r.metrics[COST] = (1.3 if int(r.trial_id) % 3 == 0 else 1.0) / r.metrics["loss"]


MIXED = ["COMPLETE"] * 3 + ["PRUNED", "COMPLETE", "FAILED", "PRUNED"] + ["COMPLETE"] * 4
MIXED += ["PRUNED", "FAILED", "COMPLETE", "RUNNING"]


def test_every_plot_of_a_ray_like_run_is_a_png(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    rundir, records = fake_run(tmp_path, MIXED)
    assert not rundir.journal.exists()  # no Optuna study on disk: built from the records
    plots = write_plots(rundir, loaded.spec, records)
    names = sorted(p.name for p in plots.files)
    expected = ["curves", "history", "history_time", "importances", "parallel", "params"]
    expected += ["params-2", "timeline"]
    assert names == sorted(f"{n}.png" for n in expected)
    for path in plots.files:
        blob = path.read_bytes()
        assert path.parent == rundir.plots
        assert blob.startswith(PNG) and len(blob) > 5000, path
    import matplotlib.image

    assert matplotlib.image.imread(rundir.plots / "history.png").shape[2] in (3, 4)
    assert plots.notes == []


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The figures of the :data:`MIXED` run, drawn once for the tests that read them."""
    tmp = tmp_path_factory.mktemp("mixed")
    loaded = load(tmp)
    rundir, records = fake_run(tmp, MIXED)
    drawn, _ = draw(run_view(rundir, loaded.spec, records))
    yield by_name(drawn)
    close(drawn)


def test_int_log_axis_reads_as_a_few_plain_numbers(mixed: dict[str, Any]) -> None:
    figures = mixed
    hidden = [t for fig in figures.values() for t in labels(fig, "x", "hidden")]
    assert hidden, "a slice panel for hidden"
    for ticks in hidden:
        assert 2 <= len(ticks) <= 5, ticks
        assert all(t.isdigit() for t in ticks), ticks  # not every minor tick in scientific notation
    (lr,) = [t for fig in figures.values() for t in labels(fig, "x", "lr")]
    assert 2 <= len(lr) <= 5 and all(float(t) > 0 for t in lr), lr


def test_a_choice_of_numbers_is_drawn_in_numeric_order(mixed: dict[str, Any]) -> None:
    figures = mixed  # batch_size: {choice: [128, 32, 64]}
    (ticks,) = [t for fig in figures.values() for t in labels(fig, "x", "batch_size")]
    assert ticks == ["32", "64", "128"]
    (optimizer,) = [t for fig in figures.values() for t in labels(fig, "x", "optimizer")]
    assert optimizer == ["adam", "sgd"]  # not "'adam'"
    parallel = figures["parallel"]
    columns = [labels(parallel, "y")[i] for i in range(len(parallel.axes))]
    assert ["32", "64", "128"] in columns


def test_one_complete_trial_still_shows_its_best_so_far(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    rundir, records = fake_run(tmp_path, ["PRUNED", "COMPLETE", "FAILED"])
    drawn, notes = draw(run_view(rundir, loaded.spec, records))
    history = by_name(drawn)["history"]
    ax = history.axes[0]
    (best,) = [line for line in ax.get_lines() if line.get_drawstyle() == "steps-post"]
    xs, ys = best.get_data()
    assert list(xs) == [1.0, 2.0] and ys[0] == ys[1]  # carried on to the last trial
    assert ax.get_xticks().tolist() == [int(x) for x in ax.get_xticks()]  # integer trial ticks
    assert labels(history, "x")[0] == ["0", "1", "2"]
    assert any("importances" in n for n in notes)
    assert "importances" not in by_name(drawn)
    close(drawn)


def test_pruned_values_never_stretch_the_history(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    rundir, records = fake_run(tmp_path, MIXED)
    records[3].metrics["loss"] = 1.0e6  # a pruned trial's partial value, far off
    rundir.reports_file("3").unlink()
    drawn, _ = draw(run_view(rundir, loaded.spec, records))
    low, high = by_name(drawn)["history"].axes[0].get_ylim()
    done = [r.metrics["loss"] for r in records if r.state == "COMPLETE"]
    assert low < min(done) and max(done) < high < 2 * max(done)
    close(drawn)


def test_several_metrics_get_the_pareto_front(tmp_path: Path) -> None:
    metrics = {"loss": "min", COST: "min"}
    loaded = load(tmp_path, objective={"metric": None, "mode": None, "metrics": metrics})
    rundir, records = fake_run(tmp_path, MIXED[:8], metrics=tuple(metrics))
    trade_off(records)
    plots = write_plots(rundir, loaded.spec, records)
    names = {p.stem for p in plots.files}
    assert {"pareto", "history", "curves", "params"} <= names
    assert (rundir.plots / "pareto.png").read_bytes().startswith(PNG)
    single = load(tmp_path)  # a few trials are enough to see the stale plot go
    assert "pareto" not in {p.stem for p in write_plots(rundir, single.spec, records[:3]).files}
    assert not (rundir.plots / "pareto.png").exists()  # a stale plot is removed


def test_values_outside_the_space_widen_it(tmp_path: Path) -> None:
    loaded = load(tmp_path)
    rundir, records = fake_run(tmp_path, ["COMPLETE"] * 4)
    records[0].params["dropout"] = 0.9  # a PBT mutation past the spec's range
    records[1].params["hidden"] = 1000
    view = run_view(rundir, loaded.spec, records)
    assert view.distributions["dropout"].high == 0.9
    assert view.distributions["hidden"].high == 1000
    trials = build_study(view).trials
    assert trials[0].params["dropout"] == 0.9 and trials[1].params["hidden"] == 1000


def test_a_real_sweep_with_a_pruner(tmp_path: Path) -> None:
    from sweepspec.backends import read_run
    from sweepspec.run.ledger import records_in_order

    data = spec(
        "real",
        objective={"function": "sweepspec_examples.toy:curve"},
        space={"lr": {"loguniform": [1.0e-5, 1.0e-1]}, "epochs": {"int": [4, 12]}},
        scheduler={"type": "asha", "max_t": 12, "grace_period": 2, "reduction_factor": 2},
        trials={"num_samples": 8},
    )
    write_spec(tmp_path, data)
    run_ok(tmp_path)
    loaded = load_spec(tmp_path / "spec.yaml", feasibility=False)
    rundir, ledger, _ = read_run(loaded)
    records = list(records_in_order(ledger))
    plots = write_plots(rundir, loaded.spec, records)
    assert {r.state for r in records} == {"COMPLETE", "PRUNED"}
    names = {p.stem for p in plots.files}
    assert {"history", "history_time", "curves", "params", "timeline"} <= names, plots.notes


def test_log_ticks_and_their_text() -> None:
    assert log_ticks(30, 600) == [50, 100, 200, 500]
    assert log_ticks(1e-5, 1e-1) == [1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    assert len(log_ticks(1e-9, 1e3)) <= 5
    assert len(log_ticks(40, 70)) >= 2
    assert [tick_text(v) for v in (128.0, 0.5, 1e-5)] == ["128", "0.5", "1e-05"]


def test_importing_plots_and_report_imports_no_library() -> None:
    code = (
        "import sys, sweepspec, sweepspec.plots, sweepspec.report\n"
        "bad = [m for m in ('matplotlib', 'optuna') if m in sys.modules]\n"
        "print(json.dumps(bad))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", "import json\n" + code],
        cwd=REPO,
        env=env(),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(proc.stdout) == []
