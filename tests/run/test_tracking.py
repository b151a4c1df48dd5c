"""MLflow tracking: each finished trial logged exactly once, across resumes and crashes, and a
tracking server that is down never stops a sweep."""

from __future__ import annotations

import importlib.util
import time
from pathlib import Path
from typing import Any

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.load import load_spec
from sweepspec.records import TrialRecord
from sweepspec.run.tracking import MlflowSync, check_tracking
from tests.builders import kill_group, popen, run_ok, spec, write_spec

pytest.importorskip("mlflow")


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
    logged_before = _logged(uri, "tracked")
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
