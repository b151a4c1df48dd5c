"""Faulty objectives, stop rules, schedulers and the space's rules, end to end on the Optuna
backend: each test writes a small spec, runs ``sweepspec run`` in a subprocess and reads what
the run directory and the Optuna journal hold afterwards."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("optuna")
pytest.importorskip("psutil")

from tests.builders import (
    attempts,
    descendants,
    describe,
    leftovers,
    load_study,
    no_leftovers,
    read_best,
    read_csv,
    read_summary,
    run_dir,
    run_ok,
    spec,
    states,
    write_spec,
)

FAULTY = "sweepspec_examples.faulty:"
CURVE = "sweepspec_examples.toy:curve"
TIMEOUT_S = 2.0
KILL_GRACE_S = 2.0  # sweepspec.backends.optuna_backend.runner.KILL_GRACE_S
POLL_S = 1.0


def assert_no_leftovers(tmp_path: Path) -> None:
    assert no_leftovers(tmp_path), describe(descendants() + leftovers(tmp_path))


def logical_attempts(tmp_path: Path, name: str) -> dict[str, list[Any]]:
    return attempts(load_study(tmp_path, name))


# -- trial processes ------------------------------------------------------------------------


def _lifecycle(tmp_path: Path, name: str, modes: list[str], **backend: Any) -> list[Any]:
    import json

    log = tmp_path / f"{name}.jsonl"
    write_spec(
        tmp_path,
        spec(
            name,
            objective={"function": FAULTY + "lifecycle", "config": {"log": str(log)}},
            space={"mode": {"choice": ["ok", "thread", "exit"]}, "i": {"int": [0, 99]}},
            try_first=[{"mode": m, "i": i} for i, m in enumerate(modes)],  # distinct configs
            trials={"num_samples": len(modes), "max_retries": 0},
            resources={"max_concurrent": 1},
            backend={"type": "optuna", **backend},
        ),
    )
    run_ok(tmp_path)
    rows = sorted(read_csv(tmp_path, name), key=lambda r: int(r["trial_id"]))
    assert [r["state"] for r in rows] == ["FAILED" if m == "exit" else "COMPLETE" for m in modes]
    entries = [json.loads(x) for x in log.read_text().splitlines()]
    assert [e["mode"] for e in entries] == modes
    return entries


def test_a_trial_process_runs_trials_until_one_leaves_it_dirty(tmp_path: Path) -> None:
    entries = _lifecycle(tmp_path, "reuse", ["ok", "ok", "thread", "ok", "exit", "ok"])
    assert [e["n"] for e in entries] == [1, 2, 3, 1, 2, 1]
    pids = [e["pid"] for e in entries]
    assert pids[0] == pids[1] == pids[2] != pids[3] == pids[4] != pids[5]
    failed = read_summary(tmp_path, "reuse")["failed"]
    assert [f["error"] for f in failed] == ["the trial process exited with code 3 before returning"]
    assert_no_leftovers(tmp_path)  # the idle process is gone with the run


def test_reuse_processes_false_forks_a_process_for_every_trial(tmp_path: Path) -> None:
    entries = _lifecycle(tmp_path, "fresh", ["ok", "ok", "ok"], reuse_processes=False)
    assert [e["n"] for e in entries] == [1, 1, 1] and len({e["pid"] for e in entries}) == 3


# -- objectives that fail -------------------------------------------------------------------


def test_raises_is_retried_then_failed_with_traceback(tmp_path: Path) -> None:
    write_spec(
        tmp_path,
        spec(
            "raises",
            objective={"function": FAULTY + "raises"},
            trials={"num_samples": 3, "max_retries": 2},
        ),
    )
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "raises")
    assert len(rows) == 3 and states(rows) == {"FAILED": 3}
    tries = logical_attempts(tmp_path, "raises")
    assert sorted(tries) == sorted(r["trial_id"] for r in rows)
    for logical, ts in tries.items():
        assert len(ts) == 1 + 2, logical
        assert sorted(t.user_attrs["attempt"] for t in ts) == [0, 1, 2]
        assert all(t.state.name == "FAIL" for t in ts)
        assert [t.user_attrs.get("final", False) for t in ts].count(True) == 1
        for attempt in range(3):
            text = (
                run_dir(tmp_path, "raises") / "trials" / logical / f"error-{attempt}.txt"
            ).read_text()
            assert "ValueError: boom" in text and "Traceback (most recent call last)" in text
    failed = read_summary(tmp_path, "raises")["failed"]
    assert [f["error"] for f in failed] == ["ValueError: boom"] * 3
    assert "no COMPLETE trial" in read_best(tmp_path, "raises")
    assert_no_leftovers(tmp_path)


@pytest.mark.parametrize(
    ("function", "reason"),
    [
        pytest.param("nan", "nan_metric", id="nan"),
        pytest.param("inf", "nan_metric", id="inf"),
        pytest.param("missing_metric", "missing_metric", id="missing-metric"),
        pytest.param("returns_none_without_report", "missing_metric", id="none"),
    ],
)
def test_bad_metric_is_a_failed_trial(tmp_path: Path, function: str, reason: str) -> None:
    write_spec(
        tmp_path,
        spec(
            "bad",
            objective={"function": FAULTY + function},
            trials={"num_samples": 3, "max_retries": 1},
        ),
    )
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "bad")
    assert states(rows) == {"FAILED": 3}
    summary = read_summary(tmp_path, "bad")
    assert summary["trials"]["COMPLETE"] == 0 and summary["best"] == []
    assert len(summary["failed"]) == 3
    assert all(f["error"].startswith(reason) and "loss" in f["error"] for f in summary["failed"])
    assert "no COMPLETE trial" in read_best(tmp_path, "bad")
    study = load_study(tmp_path, "bad")
    assert not [t for t in study.get_trials() if t.state.name == "COMPLETE"]


MIXED = """\
import math


def objective(config, trial):
    x = config["x"]
    if x < -0.3:
        return {"loss": float("-inf")}   # would be the best loss of all, were it accepted
    if x < 0.0:
        return {"loss": float("nan")}
    return {"loss": x}
"""


def test_non_finite_values_never_win(tmp_path: Path) -> None:
    (tmp_path / "mixed.py").write_text(MIXED)
    write_spec(
        tmp_path,
        spec(
            "mixed",
            objective={"function": "mixed.py:objective"},
            space={"x": {"uniform": [-1.0, 1.0]}},
            trials={"num_samples": 8},
        ),
    )
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "mixed")
    assert len(rows) == 8
    bad = [r for r in rows if float(r["params.x"]) < 0]
    good = [r for r in rows if float(r["params.x"]) >= 0]
    assert bad and good  # the seeded sampler gives both kinds
    assert all(r["state"] == "FAILED" for r in bad)
    assert all(r["state"] == "COMPLETE" and math.isfinite(float(r["loss"])) for r in good)
    best = min(good, key=lambda r: float(r["loss"]))
    assert read_best(tmp_path, "mixed").startswith(f"# best trial {best['trial_id']}:")
    assert f"x: {best['params.x']}" in read_best(tmp_path, "mixed")
    assert [b["trial_id"] for b in read_summary(tmp_path, "mixed")["best"]] == [best["trial_id"]]


@pytest.mark.parametrize("function", ["hangs", "busy_hang", "spawns_child_and_hangs"])
def test_hanging_trial_is_killed_at_its_timeout(tmp_path: Path, function: str) -> None:
    write_spec(
        tmp_path,
        spec(
            "hang",
            objective={"function": FAULTY + function},
            trials={"num_samples": 2, "timeout": TIMEOUT_S, "max_retries": 1},
        ),
    )
    started = time.monotonic()
    run_ok(tmp_path, timeout=60)
    wall = time.monotonic() - started
    rows = read_csv(tmp_path, "hang")
    assert states(rows) == {"FAILED": 2}
    limit = TIMEOUT_S + KILL_GRACE_S + POLL_S
    for r in rows:
        assert TIMEOUT_S <= float(r["duration_s"]) <= limit, r
    failed = read_summary(tmp_path, "hang")["failed"]
    assert all(f["error"].startswith("timeout") for f in failed)
    # a timeout is final: not retried (it would just hang again)
    assert all(len(ts) == 1 for ts in logical_attempts(tmp_path, "hang").values())
    assert wall < 15 + limit  # both ran at once; the rest is start-up
    assert_no_leftovers(tmp_path)
    if function == "spawns_child_and_hangs":
        import psutil

        sleepers = [
            p
            for p in psutil.process_iter(["cmdline", "cwd", "status"])
            if p.info["cmdline"] == ["sleep", "3600"]
            and p.info["cwd"] == str(tmp_path)
            and p.info["status"] != psutil.STATUS_ZOMBIE
        ]
        assert not sleepers


@pytest.mark.parametrize(
    ("function", "message"),
    [
        pytest.param("exits", "exited with code 3", id="os-exit"),
        pytest.param("segfault", "signal SIGSEGV", id="segfault"),
    ],
)
def test_crashing_trial_is_retried_and_the_driver_lives(
    tmp_path: Path, function: str, message: str
) -> None:
    write_spec(
        tmp_path,
        spec(
            "crash",
            objective={"function": FAULTY + function},
            trials={"num_samples": 3, "max_retries": 1},
        ),
    )
    run_ok(tmp_path)  # the driver finished the sweep: it outlived every crash
    rows = read_csv(tmp_path, "crash")
    assert states(rows) == {"FAILED": 3}
    assert all(message in f["error"] for f in read_summary(tmp_path, "crash")["failed"])
    tries = logical_attempts(tmp_path, "crash")
    assert len(tries) == 3 and all(len(ts) == 2 for ts in tries.values())
    for logical in tries:
        log = (run_dir(tmp_path, "crash") / "trials" / logical / "log.txt").read_text()
        assert log.count("--- attempt") == 2
        if function == "segfault":
            assert "Fatal Python error: Segmentation fault" in log
            assert "faulty.py" in log and "in segfault" in log
    assert_no_leftovers(tmp_path)


def test_flaky_trial_succeeds_on_retry(tmp_path: Path) -> None:
    markers = tmp_path / "markers"
    write_spec(
        tmp_path,
        spec(
            "flaky",
            objective={"function": FAULTY + "flaky", "config": {"marker_dir": str(markers)}},
            space={"key": {"grid": ["a", "b", "c"]}},
            trials={"num_samples": 1, "max_retries": 1},
        ),
    )
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "flaky")
    assert states(rows) == {"COMPLETE": 3}
    assert sorted(r["params.key"] for r in rows) == ["a", "b", "c"]
    for ts in logical_attempts(tmp_path, "flaky").values():
        ts.sort(key=lambda t: t.number)
        assert [(t.user_attrs["attempt"], t.state.name) for t in ts] == [
            (0, "FAIL"),
            (1, "COMPLETE"),
        ]
    assert read_summary(tmp_path, "flaky")["failed"] == []


# -- sweep stops ----------------------------------------------------------------------------


def test_target_stops_the_sweep(tmp_path: Path) -> None:
    write_spec(
        tmp_path,
        spec("target", trials={"num_samples": 50}, stop={"sweep": {"target": {"loss": 0.3}}}),
    )
    proc = run_ok(tmp_path)
    assert "[stopped: target]" in proc.stderr
    rows = read_csv(tmp_path, "target")
    assert len(rows) < 50
    reached = [r for r in rows if r["state"] == "COMPLETE" and float(r["loss"]) <= 0.3]
    assert reached
    # nothing was launched (asked) after the first trial that reached it had finished
    trials = load_study(tmp_path, "target").get_trials()
    hit = min(
        t.datetime_complete for t in trials if t.state.name == "COMPLETE" and t.values[0] <= 0.3
    )
    assert all(t.datetime_start <= hit for t in trials)
    assert len(trials) == len(rows)  # and everything launched ran to its end


# -- trial stops and schedulers -------------------------------------------------------------


def test_asha_prunes_and_best_is_complete(tmp_path: Path) -> None:
    write_spec(
        tmp_path,
        spec(
            "asha",
            objective={"function": CURVE, "config": {"epochs": 9, "step_seconds": 0.02}},
            space={"lr": {"loguniform": [1e-5, 1e-1]}},
            scheduler={"type": "asha", "max_t": 9, "grace_period": 1, "reduction_factor": 3},
            trials={"num_samples": 8},
        ),
    )
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "asha")
    counts = states(rows)
    assert len(rows) == 8 and counts.get("PRUNED", 0) >= 1 and counts.get("COMPLETE", 0) >= 1
    assert set(counts) <= {"PRUNED", "COMPLETE"}
    for r in rows:
        if r["state"] == "PRUNED":
            assert 1 <= int(r["iterations"]) < 9
        else:
            assert int(r["iterations"]) == 9
    study = load_study(tmp_path, "asha")
    pruned = [t for t in study.get_trials() if t.state.name == "PRUNED"]
    assert len(pruned) == counts["PRUNED"]
    complete = {r["trial_id"]: r for r in rows if r["state"] == "COMPLETE"}
    best = min(complete.values(), key=lambda r: float(r["loss"]))
    assert read_best(tmp_path, "asha").startswith(f"# best trial {best['trial_id']}:")
    assert read_summary(tmp_path, "asha")["best"][0]["trial_id"] in complete


def test_nan_report_is_never_shown_to_the_pruner(tmp_path: Path) -> None:
    write_spec(
        tmp_path,
        spec(
            "nanrep",
            objective={"function": FAULTY + "nan_report"},
            scheduler={"type": "median", "grace_period": 0, "min_samples_required": 1},
            trials={"num_samples": 4},
        ),
    )
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "nanrep")
    assert len(rows) == 4 and set(states(rows)) <= {"COMPLETE", "PRUNED"}
    for t in load_study(tmp_path, "nanrep").get_trials():
        values = t.intermediate_values
        assert values and all(math.isfinite(v) for v in values.values())
        assert 2 not in values  # the NaN step
        if t.state.name == "COMPLETE":
            assert t.values == [0.5]


# -- the space: conditions, constraints, try_first, grid ------------------------------------


def test_constraint_violating_samples_never_run(tmp_path: Path) -> None:
    write_spec(
        tmp_path, spec("constrained", constraints=["x + y <= -0.2"], trials={"num_samples": 6})
    )
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "constrained")
    assert states(rows) == {"COMPLETE": 6}
    assert all(float(r["params.x"]) + float(r["params.y"]) <= -0.2 for r in rows)
    study = load_study(tmp_path, "constrained")
    rejected = [t for t in study.get_trials() if t.user_attrs.get("rejected")]
    assert rejected  # the sampler did propose some, and they were told, not run
    ran = {p.name for p in (run_dir(tmp_path, "constrained") / "trials").iterdir()}
    assert ran == {r["trial_id"] for r in rows}  # only what ran has a trial directory
    assert not [t for t in rejected if "logical" in t.user_attrs]  # never launched
    assert all(t.params["x"] + t.params["y"] > -0.2 for t in rejected)


def test_try_first_runs_first_and_once(tmp_path: Path) -> None:
    first = {"x": 0.25, "y": -0.125, "optimizer": "sgd"}
    data = spec(
        "tryfirst",
        space={
            "x": {"uniform": [-1.0, 1.0]},
            "y": {"uniform": [-1.0, 1.0]},
            "optimizer": {"choice": ["adam", "sgd"]},
        },
        try_first=[first],
        trials={"num_samples": 3},
    )
    write_spec(tmp_path, data)
    run_ok(tmp_path)
    rows = read_csv(tmp_path, "tryfirst")
    row0 = next(r for r in rows if r["trial_id"] == "0")
    assert {k: row0[f"params.{k}"] for k in first} == {
        "x": "0.25",
        "y": "-0.125",
        "optimizer": "sgd",
    }
    assert float(row0["loss"]) == pytest.approx((0.25 - 0.3) ** 2 + (-0.125 + 0.1) ** 2 + 0.1)
    run_ok(tmp_path, "trials.num_samples=6")  # a resume: try_first is not queued again
    rows = read_csv(tmp_path, "tryfirst")
    assert states(rows) == {"COMPLETE": 6}
    study = load_study(tmp_path, "tryfirst")
    assert sum(1 for t in study.get_trials() if t.params == first) == 1
    assert sum(1 for t in study.get_trials() if "try_first" in t.user_attrs) == 1
    assert not [t for t in study.get_trials() if t.state.name in ("WAITING", "RUNNING")]
