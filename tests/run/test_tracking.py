"""MLflow tracking: each finished trial logged exactly once, across resumes and crashes, and a
tracking server that is down never stops a sweep."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweepspec.cli import main
from sweepspec.errors import SweepspecError
from sweepspec.load import load_spec
from sweepspec.records import TrialRecord
from sweepspec.run.history import read_reports
from sweepspec.run.rundir import RunDir
from sweepspec.run.tracking import MlflowSync, check_tracking
from tests.builders import (
    curve_spec,
    kill_group,
    popen,
    read_csv,
    run_ok,
    spec,
    wait_until,
    write_spec,
)
from tests.conftest import unavailable


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def _trial_runs(uri: str, experiment: str) -> list[Any]:
    client = _client(uri)
    exp = client.get_experiment_by_name(experiment)
    assert exp is not None
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("sweepspec.role") == "trial"]


def _logged(uri: str, experiment: str) -> int:
    """How many trials MLflow has (0 before the experiment exists)."""
    try:
        if _client(uri).get_experiment_by_name(experiment) is None:
            return 0
        return len(_trial_runs(uri, experiment))
    except Exception:  # the sweep is creating the database: none yet
        return 0


def _records() -> list[TrialRecord]:
    return [
        TrialRecord("0", "COMPLETE", {"loss": 0.5, "acc": 0.9}, {"lr": 0.01, "net": {"d": 2}}),
        TrialRecord("1", "PRUNED", {"loss": 2.0}, {"lr": 0.1, "net": {"d": 3}}, iterations=3),
        TrialRecord("2", "FAILED", {}, {"lr": 0.2, "net": {"d": 1}}, error="ValueError: boom"),
        TrialRecord("3", "RUNNING", {}, {"lr": 0.3, "net": {"d": 1}}),
    ]


def test_logs_each_finished_trial_once_with_its_params_metrics_and_state(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sync = MlflowSync(uri, "exp", "sweep-a", "sweep")
    assert sync.sync(_records()) == 3  # the RUNNING trial waits until it ends
    assert sync.sync(_records()) == 0
    runs = {r.data.tags["sweepspec.trial_id"]: r for r in _trial_runs(uri, "exp")}
    assert sorted(runs) == ["0", "1", "2"]
    assert runs["0"].info.status == "FINISHED"
    assert runs["0"].data.metrics["loss"] == 0.5
    assert runs["0"].data.params == {"lr": "0.01", "net.d": "2"}
    assert runs["1"].info.status == "KILLED"
    assert runs["1"].data.tags["sweepspec.state"] == "PRUNED"
    assert runs["2"].info.status == "FAILED"
    assert "boom" in runs["2"].data.tags["sweepspec.error"]
    history = _client(uri).get_metric_history(runs["1"].info.run_id, "loss")
    assert [m.step for m in history] == [3]
    parents = {r.data.tags["mlflow.parentRunId"] for r in runs.values()}
    assert len(parents) == 1


def test_a_paused_trial_is_logged_once_it_has_ended_for_good(tmp_path: Path) -> None:
    """Promotion-based ASHA: a paused trial (PRUNED, may run on) waits like a RUNNING one; it
    is logged as it ends (promoted to its end) or when the run ends (never promoted)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sync = MlflowSync(uri, "exp", "sweep-a", "sweep")
    paused = TrialRecord("0", "PRUNED", {"loss": 2.0}, {"lr": 0.1}, iterations=3, paused=True)
    waiting = TrialRecord("1", "PRUNED", {"loss": 3.0}, {"lr": 0.2}, iterations=3, paused=True)
    assert sync.sync([paused, waiting]) == 0
    done = TrialRecord("0", "COMPLETE", {"loss": 0.4}, {"lr": 0.1}, iterations=9)
    assert sync.sync([done, waiting]) == 1
    assert sync.sync([done, waiting], final=True) == 1  # never promoted: pruned for good
    runs = {r.data.tags["sweepspec.trial_id"]: r for r in _trial_runs(uri, "exp")}
    assert runs["0"].data.tags["sweepspec.state"] == "COMPLETE"
    assert runs["1"].data.tags["sweepspec.state"] == "PRUNED"


def test_a_resumed_sweep_logs_only_new_trials(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    records = _records()
    assert MlflowSync(uri, "exp", "sweep-a", "sweep").sync(records[:2]) == 2
    # a new process (resume): what MLflow holds is read back, not remembered
    records[3] = TrialRecord("3", "COMPLETE", {"loss": 0.1}, {"lr": 0.3, "net": {"d": 1}})
    assert MlflowSync(uri, "exp", "sweep-a", "sweep").sync(records) == 2
    ids = sorted(r.data.tags["sweepspec.trial_id"] for r in _trial_runs(uri, "exp"))
    assert ids == ["0", "1", "2", "3"]
    # another sweep of the same name (after --fresh) is told apart by its sweep id
    assert MlflowSync(uri, "exp", "sweep-b", "sweep").sync(records[:1]) == 1


def test_a_run_torn_by_a_crash_is_replaced(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    sync = MlflowSync(uri, "exp", "sweep-a", "sweep")
    assert sync.sync(_records()[:1]) == 1
    client = _client(uri)
    exp_id = client.get_experiment_by_name("exp").experiment_id
    # the crash came after create_run, before the metrics and the end status
    client.create_run(
        exp_id,
        tags={
            "sweepspec.sweep_id": "sweep-a",
            "sweepspec.role": "trial",
            "sweepspec.trial_id": "1",
        },
    )
    assert MlflowSync(uri, "exp", "sweep-a", "sweep").sync(_records()) == 2
    runs = _trial_runs(uri, "exp")
    assert sorted(r.data.tags["sweepspec.trial_id"] for r in runs) == ["0", "1", "2"]
    assert all(r.info.status != "RUNNING" for r in runs)


def test_a_server_that_is_down_warns_once_and_never_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    sync = MlflowSync("http://user:hunter2@127.0.0.1:9", "exp", "sweep-a", "sweep")
    started = time.monotonic()
    assert sync.sync(_records()) == 0
    assert sync.close(_records()) == 0
    assert time.monotonic() - started < 30
    err = capsys.readouterr().err
    assert err.count("MLflow tracking") == 1
    assert "hunter2" not in err


def test_a_spec_naming_mlflow_without_it_installed_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_spec(tmp_path, spec("t", tracking={"mlflow": {"tracking_uri": "sqlite:///x.db"}}))
    loaded = load_spec(path, [], feasibility=False)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    with pytest.raises(SweepspecError, match=r"sweepspec\[mlflow\]"):
        check_tracking(loaded.spec)


@pytest.mark.slow
def test_sweep_killed_and_resumed_logs_every_trial_exactly_once(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    data = spec(
        "tracked",
        objective={"function": "sweepspec_examples.toy:busy", "config": {"work": 1.0}},
        space={"x": {"uniform": [0.0, 1.0]}},
        trials={"num_samples": 12},
        tracking={"mlflow": {"tracking_uri": uri, "experiment": "tracked"}},
    )
    write_spec(tmp_path, data)
    proc = popen(tmp_path)
    deadline = time.monotonic() + 60
    trials = tmp_path / "runs" / "tracked" / "trials.csv"
    while time.monotonic() < deadline:  # kill once MLflow has a few of the trials
        if trials.exists() and _logged(uri, "tracked") >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the sweep ended before the kill"  # the kill lands mid-run
    kill_group(proc)
    logged_before = 0
    deadline = time.monotonic() + 15
    while not logged_before and time.monotonic() < deadline:  # the killed writer's lock fades
        logged_before = _logged(uri, "tracked")
        time.sleep(0 if logged_before else 0.2)
    assert 2 <= logged_before < 12  # some trials were logged, the rest were not yet
    run_ok(tmp_path)
    runs = _trial_runs(uri, "tracked")
    ids = [r.data.tags["sweepspec.trial_id"] for r in runs]
    assert len(ids) == 12 and len(set(ids)) == 12
    assert all(r.info.status == "FINISHED" for r in runs)
    losses = {r.data.tags["sweepspec.trial_id"]: r.data.metrics["loss"] for r in runs}
    csv_rows = (tmp_path / "runs" / "tracked" / "trials.csv").read_text().splitlines()[1:]
    assert len(csv_rows) == 12
    for row in csv_rows:
        trial_id = row.split(",")[0]
        assert trial_id in losses


# --------------------------------------------------------------- curves, times, the parent run


def _ms(moment: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(moment).timestamp() * 1000)


def _parent(client: Any, experiment: str) -> Any:
    exp = client.get_experiment_by_name(experiment)
    (parent,) = [
        r
        for r in client.search_runs([exp.experiment_id], max_results=1000)
        if r.data.tags.get("sweepspec.role") == "sweep"
    ]
    return parent


def _curve_spec(uri: str, num_samples: int = 3) -> dict[str, Any]:
    tracking = {"mlflow": {"tracking_uri": uri, "experiment": "curves"}}
    return curve_spec("curves", num_samples=num_samples, epochs=4, tracking=tracking)


def _check_trials_match_the_run(uri: str, rundir: Path) -> dict[str, Any]:
    """Every trial of trials.csv is one child run whose history of each reported metric is
    the trial's reports, step by step, and whose start and end are the trial's."""
    client = _client(uri)
    runs = {r.data.tags["sweepspec.trial_id"]: r for r in _trial_runs(uri, "curves")}
    rows = read_csv(rundir.parent.parent, rundir.name)
    assert sorted(runs) == sorted(row["trial_id"] for row in rows)
    for row in rows:
        run = runs[row["trial_id"]]
        reports = read_reports(RunDir(rundir), row["trial_id"])
        assert len(reports) == 4
        for key in ("loss", "epoch"):
            history = client.get_metric_history(run.info.run_id, key)
            got = sorted((m.step, m.value) for m in history)
            assert got == [(r["step"], float(r[key])) for r in reports], key
        assert run.info.start_time == _ms(row["started_at"])
        assert run.info.end_time == _ms(row["ended_at"])
        assert run.info.start_time <= run.info.end_time
        assert run.data.metrics["loss"] == pytest.approx(float(row["loss"]))
    return runs


def _artifacts(client: Any, run_id: str, path: str | None = None) -> set[str]:
    return {f.path for f in client.list_artifacts(run_id, path)}


@pytest.mark.slow
def test_a_sweep_logs_curves_real_times_the_best_and_its_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """End to end through the CLI on a real store: learning curves at their steps, the
    trials' own start and end, the best metrics and the run's files on the parent run; an
    extended run updates the budget tag, the best and the files and logs no trial twice."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    write_spec(tmp_path, _curve_spec(uri))
    run_ok(tmp_path)
    rundir = tmp_path / "runs" / "curves"
    client = _client(uri)
    _check_trials_match_the_run(uri, rundir)
    parent = _parent(client, "curves")
    best = json.loads((rundir / "summary.json").read_text())["best"][0]
    assert parent.data.metrics["loss"] == pytest.approx(best["metrics"]["loss"])
    assert parent.data.tags["sweepspec.best_trial"] == best["trial_id"]
    assert parent.data.tags["sweepspec.num_samples"] == "3"
    assert parent.info.status == "FINISHED"
    meta = json.loads((rundir / "meta.json").read_text())
    assert parent.info.start_time == int(meta["created"] * 1000)
    files = _artifacts(client, parent.info.run_id)
    assert files >= {"spec.yaml", "spec.resolved.yaml", "trials.csv", "best.yaml", "summary.json"}
    logged = tmp_path / "logged"
    logged.mkdir()
    client.download_artifacts(parent.info.run_id, "trials.csv", str(logged))
    assert (logged / "trials.csv").read_text() == (rundir / "trials.csv").read_text()

    # `results` draws the plots and report.html: they join the parent's files
    monkeypatch.chdir(tmp_path)
    assert main(["results", "spec.yaml", "--format", "json"]) == 0
    capsys.readouterr()
    files = _artifacts(client, parent.info.run_id)
    assert {"report.html", "plots"} <= files
    drawn = {f"plots/{p.name}" for p in (rundir / "plots").iterdir() if p.is_file()}
    assert drawn and _artifacts(client, parent.info.run_id, "plots") == drawn

    # extended: 2 more trials, each logged once; the budget tag and the best follow
    run_ok(tmp_path, "trials.num_samples=5")
    runs = _check_trials_match_the_run(uri, rundir)
    assert len(runs) == 5
    parent = _parent(client, "curves")
    assert parent.data.tags["sweepspec.num_samples"] == "5"
    best = json.loads((rundir / "summary.json").read_text())["best"][0]
    assert parent.data.metrics["loss"] == pytest.approx(best["metrics"]["loss"])
    assert parent.data.tags["sweepspec.best_trial"] == best["trial_id"]
    steps = [m.step for m in client.get_metric_history(parent.info.run_id, "loss")]
    assert steps == sorted(steps) and steps[-1] == 5  # the best so far, by trials finished
    logged = tmp_path / "logged2"
    logged.mkdir()
    client.download_artifacts(parent.info.run_id, "summary.json", str(logged))
    assert json.loads((logged / "summary.json").read_text())["num_samples"] == 5


def test_reports_with_odd_values_log_only_finite_numbers(tmp_path: Path) -> None:
    """NaN, infinities, text, booleans and None in a report are left out of the history; the
    final metrics land at the last step once (not again where the last report holds them)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    rundir = RunDir(tmp_path / "run")
    rundir.reports.mkdir(parents=True)
    lines = [
        {"step": 1, "time_s": 0.5, "attempt": 0, "loss": 2.0, "note": "warm", "ok": True},
        {"step": 2, "time_s": 1.0, "attempt": 0, "loss": "nan", "acc": None, "lr": 0.1},
        {"step": 3, "time_s": 1.5, "attempt": 0, "loss": 1.0, "big": "inf", "nested": 7},
    ]
    rundir.reports_file("0").write_text("".join(json.dumps(x) + "\n" for x in lines))
    record = TrialRecord(
        "0",
        "COMPLETE",
        {"loss": 1.0, "acc": 0.75, "note": "done"},
        {"lr": 0.1},
        iterations=3,
        started_at="2026-01-02T03:04:05.000Z",
        ended_at="2026-01-02T03:04:09.250Z",
    )
    sync = MlflowSync(uri, "exp", "sweep-a", "sweep", rundir=rundir, directions={"loss": "min"})
    assert sync.close([record]) == 1
    (run,) = _trial_runs(uri, "exp")
    client = _client(uri)

    def history(key: str) -> list[tuple[int, float, int]]:
        items = client.get_metric_history(run.info.run_id, key)
        return sorted((m.step, m.value, m.timestamp) for m in items)

    start = _ms("2026-01-02T03:04:05.000Z")
    end = _ms("2026-01-02T03:04:09.250Z")
    assert history("loss") == [(1, 2.0, start + 500), (3, 1.0, start + 1500)]
    assert history("lr") == [(2, 0.1, start + 1000)]
    assert history("nested") == [(3, 7.0, start + 1500)]
    assert history("acc") == [(3, 0.75, end)]  # only in the final metrics
    for absent in ("note", "ok", "big"):
        assert history(absent) == []
    assert (run.info.start_time, run.info.end_time) == (start, end)
    parent = _parent(client, "exp")
    assert parent.data.metrics == {"loss": 1.0, "acc": 0.75}
    assert _artifacts(client, parent.info.run_id) == set()  # the run directory holds no files
    # a second session logs the trial no second time
    again = MlflowSync(uri, "exp", "sweep-a", "sweep", rundir=rundir, directions={"loss": "min"})
    assert again.close([record]) == 0
    assert history("loss") == [(1, 2.0, start + 500), (3, 1.0, start + 1500)]


def test_a_pareto_front_puts_each_objective_best_on_the_parent(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    records = [
        TrialRecord("0", "COMPLETE", {"loss": 1.0, "ms": 5.0}),
        TrialRecord("1", "COMPLETE", {"loss": 2.0, "ms": 1.0}),
        TrialRecord("2", "COMPLETE", {"loss": 3.0, "ms": 6.0}),  # dominated
    ]
    directions = {"loss": "min", "ms": "min"}
    assert MlflowSync(uri, "exp", "s", "sweep", directions=directions).close(records) == 3
    parent = _parent(_client(uri), "exp")
    assert parent.data.metrics == {"loss": 1.0, "ms": 1.0}
    assert parent.data.tags["sweepspec.best_trial"] == "0,1"


# ------------------------------------------------------------------- a real tracking server


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


SERVER_START_S = 90  # 2 shared cores: the server's imports alone take 10-20 s here


@pytest.fixture
def mlflow_server(tmp_path: Path) -> Iterator[str]:
    """A real ``mlflow server`` on 127.0.0.1 (SQLite store, artifacts proxied into
    ``tmp_path``), killed at the end."""
    if importlib.util.find_spec("flask") is None:
        unavailable("`mlflow server` needs the full mlflow package (sweepspec[dev])")
    port = _free_port()
    log = (tmp_path / "mlflow-server.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--artifacts-destination",
            str(tmp_path / "server-artifacts"),
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: proc.poll() is not None or _answers(f"{url}/health"), SERVER_START_S)
        if not _answers(f"{url}/health"):
            tail = (tmp_path / "mlflow-server.log").read_text(errors="replace")[-2000:]
            unavailable(f"mlflow server did not answer within {SERVER_START_S} s:\n{tail}")
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        log.close()


@pytest.mark.slow
def test_a_sweep_tracked_by_a_real_mlflow_server(tmp_path: Path, mlflow_server: str) -> None:
    """Over HTTP: the curves, the trials' times, the best metrics and the files (uploaded
    through the server's artifact proxy)."""
    write_spec(tmp_path, _curve_spec(mlflow_server, num_samples=2))
    run_ok(tmp_path)
    _check_trials_match_the_run(mlflow_server, tmp_path / "runs" / "curves")
    client = _client(mlflow_server)
    parent = _parent(client, "curves")
    best = json.loads((tmp_path / "runs" / "curves" / "summary.json").read_text())["best"][0]
    assert parent.data.metrics["loss"] == pytest.approx(best["metrics"]["loss"])
    assert parent.data.tags["sweepspec.num_samples"] == "2"
    files = _artifacts(client, parent.info.run_id)
    assert files >= {"spec.yaml", "spec.resolved.yaml", "trials.csv", "best.yaml", "summary.json"}
    stored = tmp_path / "server-artifacts"
    assert any(p.name == "trials.csv" for p in stored.rglob("*"))  # on the server's side
