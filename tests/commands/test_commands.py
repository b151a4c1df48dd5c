"""The read-only commands on a finished run: ``plan``, ``status``, ``results`` (table, JSON,
plots) and ``diff``, called in process through the CLI's ``main``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sweepspec.cli import main
from tests.builders import run_ok, spec, write_spec

Capsys = pytest.CaptureFixture[str]

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 6-trial sweep (two metrics of which the first is optimised, log and
    categorical parameters)."""
    tmp = tmp_path_factory.mktemp("finished")
    data = spec(
        "done",
        space={
            "x": {"uniform": [-1.0, 1.0]},
            "y": {"loguniform": [0.01, 1.0]},
            "optimizer": {"choice": ["adam", "sgd"]},
        },
        trials={"num_samples": 6},
    )
    write_spec(tmp, data)
    run_ok(tmp)
    return tmp


def test_status_counts_and_best(
    finished: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.chdir(finished)
    assert main(["status", "spec.yaml", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trials"] == {"COMPLETE": 6, "PRUNED": 0, "FAILED": 0, "RUNNING": 0}
    rows = (finished / "runs" / "done" / "trials.csv").read_text().splitlines()[1:]
    losses = [float(r.split(",")[2]) for r in rows]
    assert data["best"][0]["metrics"]["loss"] == pytest.approx(min(losses))
    assert main(["status", "spec.yaml"]) == 0
    assert "6/6 done" in capsys.readouterr().out


def test_results_table_json_and_plots(
    finished: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.chdir(finished)
    plots = finished / "runs" / "done" / "plots"
    assert main(["results", "spec.yaml", "--top", "3"]) == 0
    out = capsys.readouterr().out
    assert "top 3 of 6 trials (6 complete)" in out
    assert out.count("│ ") >= 3  # a table row per shown trial
    for name in ("history.png", "params.png"):
        blob = (plots / name).read_bytes()
        assert blob.startswith(PNG) and len(blob) > 5000, name
    assert not (plots / "pareto.png").exists()  # one metric: no Pareto front
    report = finished / "runs" / "done" / "report.html"
    assert f"report: {report}" in out
    page = report.read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") >= 2  # the plots, embedded
    assert "top 3" in page or page.count("<tr") >= 4  # the top trials' table
    assert main(["results", "spec.yaml", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["trials"]["COMPLETE"] == 6


def test_results_formats_and_exports(
    finished: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.chdir(finished)
    rundir = finished / "runs" / "done"
    assert main(["results", "spec.yaml", "--format", "csv", "--no-plots"]) == 0
    out = capsys.readouterr().out
    assert out == (rundir / "trials.csv").read_text()
    assert len(out.splitlines()) == 7
    args = ["--export-best", "cfg/best.yaml", "--trials-csv", "out/trials.csv", "--no-plots"]
    assert main(["results", "spec.yaml", "--format", "json", "--top", "2", *args]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [t["trial_id"] for t in data["top"]] == [b["trial_id"] for b in data["best"]] + [
        data["top"][1]["trial_id"]
    ]
    losses = [t["metrics"]["loss"] for t in data["top"]]
    assert losses == sorted(losses) and len(losses) == 2
    assert (finished / "cfg" / "best.yaml").read_text() == (rundir / "best.yaml").read_text()
    assert (finished / "out" / "trials.csv").read_text() == (rundir / "trials.csv").read_text()
    assert "wrote cfg/best.yaml" in err and "wrote out/trials.csv" in err
    assert main(["status", "spec.yaml", "--json"]) == 0  # the old flag: --format json
    assert json.loads(capsys.readouterr().out)["num_samples"] == 6
    assert main(["results", "spec.yaml", "--export-best", "spec.yaml/x.yaml", "--no-plots"]) == 1
    assert "cannot write" in capsys.readouterr().err


def test_results_no_plots_draws_nothing(
    finished: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: Capsys
) -> None:
    monkeypatch.chdir(finished)
    plots = finished / "runs" / "done" / "plots"
    for f in plots.glob("*.png"):
        f.unlink()
    report = finished / "runs" / "done" / "report.html"
    report.unlink(missing_ok=True)
    assert main(["results", "spec.yaml", "--no-plots"]) == 0
    assert not list(plots.glob("*.png"))
    assert "data:image/png" not in report.read_text(encoding="utf-8")  # written, without plots


def test_results_of_a_spec_never_run_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    write_spec(tmp_path, spec("never"))
    monkeypatch.chdir(tmp_path)
    assert main(["results", "spec.yaml"]) == 1
    err = capsys.readouterr().err
    assert "never" in err and "Traceback" not in err


def test_plan_shows_compiled_study_preview_and_budget(
    finished: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.chdir(finished)
    assert main(["plan", "spec.yaml"]) == 0
    out = capsys.readouterr().out
    assert "# compiles to" in out and "RandomSampler" in out
    assert "# budget" in out and "6 trials" in out
    preview = out.split("# sampled configs", 1)[1].split("\n#", 1)[0]
    (header,) = [line for line in preview.splitlines() if "┃" in line]
    rows = [line for line in preview.splitlines() if "│" in line]
    assert [c.strip() for c in header.split("┃")][:5] == ["#", "from", "x", "y", "optimizer"]
    assert len(rows) == 5 and all("sample" in r for r in rows)
    assert sum(r.count("adam") + r.count("sgd") for r in rows) == 5


def test_plan_reports_the_feasible_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    write_spec(tmp_path, spec("c", constraints=["x < y"]))
    monkeypatch.chdir(tmp_path)
    assert main(["plan", "spec.yaml"]) == 0
    out = capsys.readouterr().out
    share = [line for line in out.splitlines() if "satisf" in line]
    assert share, out
    assert any(f"{p}%" in share[0] or f"{p}." in share[0] for p in range(40, 61)), share


def test_diff_names_space_and_budget_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    write_spec(tmp_path, spec("a"), "a.yaml")
    b = spec("a", trials={"num_samples": 40}, space={"x": {"uniform": [-2.0, 1.0]}})
    write_spec(tmp_path, b, "b.yaml")
    monkeypatch.chdir(tmp_path)
    assert main(["diff", "a.yaml", "a.yaml"]) == 0
    same = capsys.readouterr().out
    assert main(["diff", "a.yaml", "b.yaml"]) == 0
    out = capsys.readouterr().out
    assert out != same
    assert "space.x.uniform: [-1.0, 1.0] -> [-2.0, 1.0]" in out
    assert "space.y" in out  # removed
    assert "trials.num_samples: 4 -> 40" in out


def test_one_trial_count_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    """``searcher: grid`` runs each point of its finite space once, capped at num_samples:
    the run, status, results, plan and the MLflow parent run all count 2 for a two-value
    choice and num_samples 10 (status and MLflow said 10)."""
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    data = spec(
        "grid2",
        space={"opt": {"choice": ["adam", "sgd"]}, "x": 0.5, "y": 0.1},
        searcher={"type": "grid"},
        trials={"num_samples": 10},
        tracking={"mlflow": {"tracking_uri": uri}},
    )
    write_spec(tmp_path, data)
    proc = run_ok(tmp_path)
    assert "grid2: 2 trials" in proc.stderr
    monkeypatch.chdir(tmp_path)
    assert main(["status", "spec.yaml", "--format", "json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["num_samples"] == 2 and status["trials"]["COMPLETE"] == 2
    assert main(["status", "spec.yaml"]) == 0
    assert "2/2 done" in capsys.readouterr().out
    assert main(["results", "spec.yaml", "--format", "json", "--no-plots"]) == 0
    assert json.loads(capsys.readouterr().out)["num_samples"] == 2
    assert main(["plan", "spec.yaml"]) == 0
    assert "2 trials x 1 CPU" in capsys.readouterr().out
    client = MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("grid2")
    (parent,) = [
        r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags.get("sweepspec.role") == "sweep"
    ]
    assert parent.data.tags["sweepspec.num_samples"] == "2"
    run_ok(tmp_path, "trials.num_samples=1")  # a smaller budget: the run's own count follows
    assert main(["status", "spec.yaml"]) == 0
    assert "2/1 done" in capsys.readouterr().out
    (parent,) = [
        r
        for r in client.search_runs([exp.experiment_id])
        if r.data.tags.get("sweepspec.role") == "sweep"
    ]
    assert parent.data.tags["sweepspec.num_samples"] == "1"
