"""What only the ray backend does, end to end: resume past Ray's last snapshot, ASHA with its
results read back and MLflow, PBT over checkpoints, trial processes reused by Ray actors,
GPU packing. (What every backend promises is in tests/contract.)

All but the SIGKILL test run ``run_ray`` in this process on the session's local Ray (2 CPUs and
2 *logical* GPUs, so that GPU packing is tested without a GPU)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepspec.backends.ray_backend.session import run_ray
from sweepspec.errors import SweepspecError
from sweepspec.load import load_spec
from sweepspec.run.session import RunOptions
from tests import builders
from tests.builders import spec, write_spec
from tests.conftest import stop_local_ray

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[3]
OBJECTIVES = builders.OBJECTIVES
LIFECYCLE = "sweepspec_examples.faulty:lifecycle"  # the Optuna backend's reuse test uses it too


class Recorder:
    """A progress object that remembers what it was told."""

    def __init__(self) -> None:
        self.done: list[tuple[str, str, dict[str, Any], str | None]] = []
        self.updates = 0

    def update(self, ledger: Any, elapsed: float, running: int) -> None:
        self.updates += 1

    def trial_done(
        self, trial_id: str, state: str, metrics: dict[str, Any], error: str | None
    ) -> None:
        self.done.append((trial_id, state, metrics, error))


def write(tmp_path: Path, name: str, function: str, space: dict[str, Any], **sections: Any) -> Path:
    """``<name>.yaml``: the tests' spec (tests/builders.py) on the ray backend, ``function`` the
    objective, ``config`` merged into its ``objective.config`` (which names ``log_dir``)."""
    config = {"log_dir": str(tmp_path), **sections.pop("config", {})}
    objective = {"function": function, "config": config}
    # as many trials at once as Ray fits, unless a test says otherwise
    sections["resources"] = {"max_concurrent": None, **sections.get("resources", {})}
    data = spec(name, "ray", objective=objective, space=space, **sections)
    return write_spec(tmp_path, data, f"{name}.yaml")


def rows(tmp_path: Path, name: str) -> list[dict[str, str]]:
    with open(tmp_path / "runs" / name / "trials.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def ledger_events(tmp_path: Path, name: str) -> list[dict[str, Any]]:
    path = tmp_path / "runs" / name / "ledger.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def mlflow_trials(tmp_path: Path, experiment: str) -> dict[str, tuple[str, str]]:
    """trial id -> (sweepspec state, MLflow status) of the trial runs MLflow holds; each trial
    at most once (an assertion)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.get_experiment_by_name(experiment)
    out: dict[str, tuple[str, str]] = {}
    for r in client.search_runs([exp.experiment_id], max_results=1000):
        if r.data.tags.get("sweepspec.role") == "trial":
            tid = r.data.tags["sweepspec.trial_id"]
            assert tid not in out, f"trial {tid} logged twice"
            out[tid] = (r.data.tags["sweepspec.state"], r.info.status)
    return out


def jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


# -- kill -9 of `sweepspec run`, then resume ----------------------------------------------


def _cli(tmp_path: Path, spec: Path, **extra_env: str) -> subprocess.Popen[bytes]:
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        RAY_AUTH_MODE="disabled",
        **extra_env,
    )
    with open(tmp_path / "stderr.txt", "ab") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "sweepspec", "run", spec.name],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def _descendants(pid: int) -> list[Any]:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _kill_session(proc: subprocess.Popen[bytes]) -> list[Any]:
    """SIGKILL the CLI's process group (the driver and the Ray it started: GCS, raylet and
    workers share it), then anything of its tree that left the group."""
    import psutil

    tree = _descendants(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    for p in tree:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            continue
    _gone, alive = psutil.wait_procs(tree, timeout=15)
    return alive


def test_no_ray_process_outlives_a_killed_run_once_it_resumes(tmp_path: Path) -> None:
    """SIGKILL of the driver (`kill -9 PID`): Ray's dashboard and runtime-env agents survive
    it for minutes, ignoring SIGTERM; the resume kills them, and its own Ray leaves nothing."""
    import json

    from sweepspec.backends.ray_backend.leftovers import processes_of

    spec = write(
        tmp_path,
        "agents",
        f"{OBJECTIVES}:nap",
        {"x": {"uniform": [0.0, 1.0]}},
        config={"seconds": 0.5},
        trials={"num_samples": 4},
    )
    proc = _cli(tmp_path, spec)
    record = tmp_path / "runs" / "agents" / "ray-session.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if any(e["event"] == "start" for e in ledger_events(tmp_path, "agents")):
            break
        time.sleep(0.1)
    assert proc.poll() is None and record.exists(), (tmp_path / "stderr.txt").read_text()
    session = json.loads(record.read_text())["session_dir"]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(2)  # what dies with the driver is gone by then
    left = processes_of(session)
    print(f"left by the kill: {len(left)} process(es) of {session}")
    assert left  # the agents: else this test would prove nothing
    proc = _cli(tmp_path, spec)
    assert proc.wait(timeout=300) == 0, (tmp_path / "stderr.txt").read_text()
    assert processes_of(session) == []  # the resume killed what the kill left
    assert not record.exists()  # and its own Ray is gone: nothing names a session now


def test_resume_keeps_trials_that_ended_after_the_last_snapshot(tmp_path: Path) -> None:
    """Ray saves its state every few seconds, not after each trial: trials that ended after
    the last snapshot are kept (counted, never run again), and the seeded random searcher,
    restored to the snapshot, does not run their configs a second time."""
    spec = write(
        tmp_path,
        "orphans",
        f"{OBJECTIVES}:nap",
        {"x": {"uniform": [0.0, 1.0]}},
        config={"seconds": 0.4},
        trials={"num_samples": 8},
        resources={"max_concurrent": 2},
    )
    # a period this long: Ray snapshots at its first step only (no trial has ended by then)
    proc = _cli(tmp_path, spec, TUNE_GLOBAL_CHECKPOINT_S="100000")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if sum(e["event"] == "end" for e in ledger_events(tmp_path, "orphans")) >= 4:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (tmp_path / "stderr.txt").read_text()
    assert not _kill_session(proc)
    before = [e for e in ledger_events(tmp_path, "orphans") if e["event"] == "end"]
    assert 4 <= len(before) < 8

    (tmp_path / "stderr.txt").write_text("")
    proc = _cli(tmp_path, spec)
    proc.wait(timeout=300)
    err = (tmp_path / "stderr.txt").read_text()
    assert proc.returncode == 0, err
    assert "ended after Ray's last snapshot and are kept" in err
    table = rows(tmp_path, "orphans")
    assert len(table) == 8 and {r["state"] for r in table} == {"COMPLETE"}
    assert len({r["trial_id"] for r in table}) == 8
    ends = [e for e in ledger_events(tmp_path, "orphans") if e["event"] == "end"]
    assert len(ends) == len({e["ray_id"] for e in ends}) == 8  # none recorded twice
    by_id = {r["trial_id"]: r for r in table}
    for e in before:  # kept as they were
        assert float(by_id[e["trial_id"]]["params.x"]) == e["params"]["x"]
    assert len({r["params.x"] for r in table}) == 8  # no config ran twice


# -- in-process runs on one local Ray ---------------------------------------------------


def run(path: Path, *overrides: str, **kwargs: Any) -> tuple[Any, Recorder]:
    progress = Recorder()
    outcome = run_ray(load_spec(path, overrides), RunOptions(**kwargs), progress)
    return outcome, progress


def test_asha_stops_trials_early(
    local_ray: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write(
        tmp_path,
        "asha",
        f"{OBJECTIVES}:curve",
        {"lr": {"loguniform": [1e-4, 1e-1]}},
        config={"epochs": 8, "step_seconds": 0.05},
        scheduler={"type": "asha", "max_t": 8, "grace_period": 1, "reduction_factor": 2},
        trials={"num_samples": 8},
        resources={"max_concurrent": 2},
        tracking={"mlflow": {"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db"}},
    )
    outcome, progress = run(spec)
    assert outcome.reason == "done" and outcome.exit_code == 0
    table = rows(tmp_path, "asha")
    logged = mlflow_trials(tmp_path, "asha")
    assert {k: v[0] for k, v in logged.items()} == {r["trial_id"]: r["state"] for r in table}
    assert all(v[1] == ("KILLED" if v[0] == "PRUNED" else "FINISHED") for v in logged.values())
    assert list(table[0]) == [
        "trial_id",
        "state",
        "loss",
        "params.lr",
        "iterations",
        "duration_s",
        "started_at",
        "ended_at",
    ]  # the Optuna backend's columns
    assert sorted(int(r["trial_id"]) for r in table) == list(range(8))
    pruned = [r for r in table if r["state"] == "PRUNED"]
    complete = [r for r in table if r["state"] == "COMPLETE"]
    assert pruned and complete
    assert all(int(r["iterations"]) < 8 for r in pruned)
    assert all(int(r["iterations"]) == 8 for r in complete)
    best = min(complete, key=lambda r: float(r["loss"]))
    best_yaml = (tmp_path / "runs" / "asha" / "best.yaml").read_text()
    assert f"# best trial {best['trial_id']}" in best_yaml
    assert yaml.safe_load(best_yaml)["lr"] == pytest.approx(float(best["params.lr"]))
    summary = json.loads((tmp_path / "runs" / "asha" / "summary.json").read_text())
    assert summary["trials"]["PRUNED"] == len(pruned) and summary["backend"] == "ray"
    assert sorted(d[0] for d in progress.done) == sorted(r["trial_id"] for r in table)
    # status and results read the same ledger
    from sweepspec.backends import read_run

    _rundir, ledger, _meta = read_run(load_spec(spec))
    assert ledger.finished == 8 and not ledger.in_flight
    # the same spec again: nothing more runs; a changed space is refused
    again, progress = run(spec)
    assert again.ledger.finished == 8 and not progress.done
    with pytest.raises(SweepspecError, match="spec changed"):
        run(spec, "space.lr.loguniform=[1.0e-3,1.0e-1]")
    more, progress = run(spec, "trials.num_samples=10")  # a larger budget extends the run
    assert more.ledger.finished == 10 and len(progress.done) == 2
    assert sorted(int(r["trial_id"]) for r in rows(tmp_path, "asha")) == list(range(10))
    assert sorted(int(t) for t in mlflow_trials(tmp_path, "asha")) == list(range(10))
    # Ray's state torn (a machine's crash; ray#58179 left an empty tuner.pkl): Ray alone would
    # start the experiment over; the sweep goes on from the ledger and keeps every trial
    before = {r["trial_id"]: r for r in rows(tmp_path, "asha")}
    tune_dir = tmp_path / "runs" / "asha" / "tune"
    newest = max(tune_dir.glob("experiment_state-*.json"))
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])
    capsys.readouterr()
    torn, progress = run(spec, "trials.num_samples=11")
    assert "is damaged: experiment_state-" in capsys.readouterr().err
    (tmp_path / "runs" / "asha" / "tune" / "tuner.pkl").write_bytes(b"")
    empty, progress = run(spec, "trials.num_samples=12")
    assert "is damaged: cannot be restored by Ray (EOFError" in capsys.readouterr().err
    assert torn.ledger.finished == 11 and empty.ledger.finished == 12 and len(progress.done) == 1
    after = rows(tmp_path, "asha")
    assert sorted(int(r["trial_id"]) for r in after) == list(range(12))
    by_id = {r["trial_id"]: r for r in after}
    assert all(by_id[tid] == row for tid, row in before.items())  # kept as they were
    assert len({r["params.lr"] for r in after}) == 12  # no config ran twice
    assert len(list((tmp_path / "runs" / "asha").glob("tune.damaged-*"))) == 2
    # a searcher state that Ray cannot read (Ray would start over, silently): set aside too
    (max(tune_dir.glob("search_gen_state-*.json"))).write_bytes(b"garbage")
    searcher, progress = run(spec, "trials.num_samples=13")
    assert "is damaged: search_gen_state-" in capsys.readouterr().err
    assert searcher.ledger.finished == 13 and len(progress.done) == 1
    assert len({r["params.lr"] for r in rows(tmp_path, "asha")}) == 13
    # no searcher state beside the experiment state (the driver killed during Ray's first copy
    # into tune/): Ray would restore a search algorithm that knows no experiment
    for leftover in tune_dir.glob("search_gen_state-*.json"):
        leftover.unlink()
    missing, progress = run(spec, "trials.num_samples=14")
    assert "is damaged: has no search_gen_state-<time>.json" in capsys.readouterr().err
    assert missing.ledger.finished == 14 and len(progress.done) == 1
    assert len({r["params.lr"] for r in rows(tmp_path, "asha")}) == 14
    warm, progress = run(
        spec, "space.lr.loguniform=[1.0e-3,1.0e-1]", "trials.num_samples=2", warm_start=True
    )
    assert warm.ledger.finished == 2


def test_pbt_exploits_checkpoints(
    local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write(
        tmp_path,
        "pbt",
        f"{OBJECTIVES}:curve",
        {"lr": {"loguniform": [1e-4, 1e-1]}},
        config={"epochs": 10, "step_seconds": 0.2},
        scheduler={
            "type": "pbt",
            "perturbation_interval": 2,
            "quantile_fraction": 0.5,
            "resample_probability": 0.5,
        },
        trials={"num_samples": 4},
        resources={"per_trial": {"cpu": 0.5}},
    )
    outcome, _ = run(spec)
    assert outcome.reason == "done"
    table = rows(tmp_path, "pbt")
    assert len(table) == 4 and {r["state"] for r in table} == {"COMPLETE"}
    starts = jsonl(tmp_path / "starts.jsonl")
    exploits = [s for s in starts if s["from_step"] > 0 and s["owner"] != s["trial"]]
    assert exploits, starts  # a perturbed trial went on from its donor's state
    assert all(int(r["iterations"]) == 10 for r in table)


def test_trial_processes_are_reused_until_a_trial_leaves_one_dirty(
    local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    modes = ["ok", "ok", "thread", "ok", "exit", "ok"]
    spec = write(
        tmp_path,
        "reuse",
        LIFECYCLE,
        {"mode": {"choice": ["ok", "thread", "exit"]}, "i": {"int": [0, 99]}},
        try_first=[{"mode": m, "i": i} for i, m in enumerate(modes)],  # distinct configs
        trials={"num_samples": 6, "max_retries": 0},
        resources={"max_concurrent": 1},
        config={"log": str(tmp_path / "pids.jsonl")},
    )
    outcome, _ = run(spec)
    records = sorted(outcome.ledger.records.values(), key=lambda r: int(r.trial_id))
    states = [r.state for r in records]
    assert states == ["COMPLETE"] * 4 + ["FAILED", "COMPLETE"]
    (failed,) = [r for r in outcome.ledger.records.values() if r.state == "FAILED"]
    assert failed.error == "the trial process exited with code 3 before returning"
    log = jsonl(tmp_path / "pids.jsonl")
    assert [e["mode"] for e in log] == modes
    # one actor, reused (reuse_actors) until the failed trial (Ray replaces its actor)
    assert len({e["parent"] for e in log[:5]}) == 1
    # the same process until a trial leaves a thread behind or the process dies
    assert [e["n"] for e in log] == [1, 2, 3, 1, 2, 1]
    pids = [e["pid"] for e in log]
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] != pids[5]

    # reuse_processes: false forks a fresh process for every trial
    spec = write(
        tmp_path,
        "fresh",
        LIFECYCLE,
        {"mode": {"choice": ["ok"]}, "i": {"int": [0, 99]}},
        trials={"num_samples": 3},
        resources={"max_concurrent": 1},
        backend={"type": "ray", "reuse_processes": False},
        config={"log": str(tmp_path / "pids.jsonl")},
    )
    (tmp_path / "pids.jsonl").unlink()
    run(spec)
    log = jsonl(tmp_path / "pids.jsonl")
    assert [e["n"] for e in log] == [1, 1, 1] and len({e["pid"] for e in log}) == 3


def test_pbt_without_checkpoints_fails_the_trial(
    local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write(
        tmp_path,
        "nockpt",
        f"{OBJECTIVES}:modes",
        {"mode": {"choice": ["nockpt"]}},
        scheduler={"type": "pbt"},
        trials={"num_samples": 1},
    )
    outcome, _ = run(spec)
    (record,) = outcome.ledger.records.values()
    assert record.state == "FAILED"
    assert record.error == "pbt needs checkpoints: pass checkpoint= to trial.report"


def test_fractional_gpus_pack_trials(
    local_ray: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    spec = write(
        tmp_path,
        "gpus",
        f"{OBJECTIVES}:barrier",
        {"x": {"uniform": [0.0, 1.0]}},
        config={"n": 4},
        trials={"num_samples": 4},
        resources={"per_trial": {"cpu": 0.5, "gpu": 0.5}},
    )
    run(spec)
    table = rows(tmp_path, "gpus")
    assert len(table) == 4 and {r["state"] for r in table} == {"COMPLETE"}
    assert {r["together"] for r in table} == {"1"}  # all 4 ran at once on 2 (logical) GPUs
    cuda = sorted(r["cuda"] for r in table)
    assert cuda == ["0", "0", "1", "1"]  # two trials per GPU
    with pytest.raises(SweepspecError, match="no node of the Ray cluster has that much"):
        run(spec, "resources.per_trial.gpu=3", "name=toobig")
    assert not (tmp_path / "runs" / "toobig" / "ledger.jsonl").exists()


@pytest.mark.gpu
def test_real_cuda_trials(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    monkeypatch.chdir(tmp_path)
    spec = write(
        tmp_path,
        "cuda",
        f"{OBJECTIVES}:torch_cuda",
        {"x": {"uniform": [0.0, 1.0]}},
        trials={"num_samples": 2},
        resources={"per_trial": {"cpu": 1, "gpu": 0.5}},
    )
    stop_local_ray()  # this test needs a Ray that sees the real GPU
    try:
        outcome, _ = run(spec)
    finally:
        stop_local_ray()
    assert outcome.ledger.count("COMPLETE") == 2
