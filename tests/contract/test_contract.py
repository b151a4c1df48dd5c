"""What a spec promises whatever the backend, run on every backend (the ``backend`` fixture):
the space's rules, grids, failures, stops, the exact budget, the results files, resume after
SIGKILL and a changed spec refused. Each test is one or two small sweeps through the CLI."""

from __future__ import annotations

import json
import random
import time
from collections import Counter
from datetime import datetime
from typing import Any

import pytest
import yaml

from sweepspec.run.history import read_reports
from sweepspec.run.rundir import RunDir
from tests.contract.conftest import Sweep

COLUMNS_TAIL = ["iterations", "duration_s", "started_at", "ended_at"]


def _by_id(rows: list[dict[str, str]]) -> dict[str, dict[str, str]]:
    return {r["trial_id"]: r for r in rows}


def _utc(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


# -- the space: constraints, when, derived, try_first --------------------------------------


def test_constraints_when_derived_and_try_first(sweep: Sweep) -> None:
    sweep.write(
        "space",
        space={
            "x": {"uniform": [0.0, 1.0]},
            "y": {"uniform": [0.0, 1.0]},
            "opt": {"choice": ["adam", "sgd"]},
            "momentum": {"uniform": [0.0, 0.9], "when": "opt == 'sgd'"},
        },
        derived={"total": "x + y"},
        constraints=["x + y <= 0.8", "opt == 'adam' or momentum >= 0.3"],
        try_first=[{"x": 0.3, "y": 0.1, "opt": "sgd", "momentum": 0.5}],
        trials={"num_samples": 8},
        resources={"max_concurrent": 2},
    )
    sweep.run().ok()
    rows = sweep.rows()
    assert len(rows) == 8 and {r["state"] for r in rows} == {"COMPLETE"}
    configs = sweep.configs()
    assert len(configs) == 8  # no rejected proposal ever ran
    for c in configs:
        assert c["x"] + c["y"] <= 0.8
        assert c["total"] == pytest.approx(c["x"] + c["y"])  # derived, in the config
        assert ("momentum" in c) == (c["opt"] == "sgd")  # the condition decides
        assert c["opt"] == "adam" or c["momentum"] >= 0.3
    for r in rows:  # trials.csv leaves an inactive parameter empty
        assert (r["params.momentum"] == "") == (r["params.opt"] == "adam")
    # try_first runs first, exactly as given, and once: among the first trials launched
    # together (2 at once here; which of them starts first is a race on Ray)
    (first,) = [r for r in rows if (r["params.x"], r["params.y"]) == ("0.3", "0.1")]
    assert first["params.opt"] == "sgd" and int(first["trial_id"]) < 2
    assert sum(c["x"] == 0.3 and c["y"] == 0.1 for c in configs) == 1


# -- grids ----------------------------------------------------------------------------------


def test_grid_leaves_run_each_value_num_samples_times(sweep: Sweep) -> None:
    sweep.write(
        "gridleaf",
        space={"x": {"uniform": [0.0, 1.0]}, "opt": {"grid": ["adam", "sgd", "rms"]}},
        trials={"num_samples": 2},
    )
    sweep.run().ok()
    rows = sweep.rows()
    assert len(rows) == 6
    assert Counter(r["params.opt"] for r in rows) == {"adam": 2, "sgd": 2, "rms": 2}


def test_grid_searcher_runs_each_point_once_capped_by_num_samples(sweep: Sweep) -> None:
    sweep.write(
        "gridsearch",
        space={"opt": {"choice": ["adam", "sgd"]}, "x": {"uniform": [0.0, 0.5], "step": 0.25}},
        searcher={"type": "grid"},
        trials={"num_samples": 10},
    )
    sweep.run().ok()
    rows = sweep.rows()
    points = sorted((r["params.opt"], float(r["params.x"])) for r in rows)
    assert points == [(o, x) for o in ("adam", "sgd") for x in (0.0, 0.25, 0.5)]
    assert sweep.summary()["num_samples"] == 6


# -- failures -------------------------------------------------------------------------------


def test_retries_timeout_nan_and_missing_metrics(sweep: Sweep) -> None:
    modes = ["ok", "raise", "flaky", "nan", "hang", "missing"]
    sweep.write(
        "fail",
        function="modes",
        space={"mode": {"choice": modes}},
        try_first=[{"mode": m} for m in modes],
        trials={"num_samples": 6, "max_retries": 1, "timeout": 3},
    )
    sweep.run().ok()
    rows = {r["params.mode"]: r for r in sweep.rows()}
    assert {m: rows[m]["state"] for m in modes} == {
        "ok": "COMPLETE",
        "raise": "FAILED",
        "flaky": "COMPLETE",
        "nan": "FAILED",
        "hang": "FAILED",
        "missing": "FAILED",
    }
    failed = {f["trial_id"]: f["error"] for f in sweep.summary()["failed"]}
    errors = {m: failed.get(rows[m]["trial_id"]) for m in modes}
    assert errors["raise"] == "ValueError: boom"
    assert errors["nan"].startswith("nan_metric: loss = nan")
    assert errors["hang"] == "timeout: killed after 3 s"
    assert errors["missing"].startswith("missing_metric: the trial did not report 'loss'")
    best = yaml.safe_load(sweep.best())  # a failed trial never wins
    assert best["mode"] in ("ok", "flaky")
    assert sweep.summary()["trials"] == {"COMPLETE": 2, "PRUNED": 0, "FAILED": 4, "RUNNING": 0}


def test_a_trial_that_ignores_sigterm_hogs_memory_or_floods_its_output(sweep: Sweep) -> None:
    """Killed with SIGKILL after the grace when it ignores SIGTERM; failed (oom) at the memory
    cap; a flood of output is written to its log, which is capped with a marker and keeps the
    end; the others are not disturbed."""
    import psutil

    from sweepspec.run.trial_log import LOG_CAP

    modes = ["stubborn", "hog", "flood", "ok"]
    sweep.write(
        "faulty",
        function="modes",
        space={"mode": {"choice": modes}},
        try_first=[{"mode": m} for m in modes],
        trials={"num_samples": 4, "timeout": 3},
        resources={"per_trial": {"memory": "3GiB"}},
    )
    run = sweep.run().ok()
    assert "xxxx" not in run.out + run.err  # the flood went to the trial's log only
    rows = {r["params.mode"]: r for r in sweep.rows()}
    assert {m: rows[m]["state"] for m in modes} == {
        "stubborn": "FAILED",
        "hog": "FAILED",
        "flood": "COMPLETE",
        "ok": "COMPLETE",
    }
    failed = {f["trial_id"]: f["error"] for f in sweep.summary()["failed"]}
    assert failed[rows["stubborn"]["trial_id"]] == "timeout: killed after 3 s"
    assert "MemoryError" in failed[rows["hog"]["trial_id"]]
    (stubborn,) = sweep.log("pids")
    assert not psutil.pid_exists(stubborn["pid"]) or (
        psutil.Process(stubborn["pid"]).status() == psutil.STATUS_ZOMBIE
    )
    (log,) = [p for p in sweep.run_dir.glob("trials/*/log.txt") if p.stat().st_size > 2**20]
    text = log.read_bytes()
    assert len(text) <= LOG_CAP
    assert b"[sweepspec: output dropped here" in text
    assert text.rstrip().endswith(b"flood: done")  # the end of the output is kept


def test_results_no_record_can_hold_fail_the_trial_not_the_driver(sweep: Sweep) -> None:
    modes = ["huge", "extra", "odd", "ok"]
    sweep.write(
        "monsters",
        function="monsters",
        space={"mode": {"choice": modes}},
        try_first=[{"mode": m} for m in modes],
        trials={"num_samples": 4},
    )
    run = sweep.run().ok()
    assert "Traceback" not in run.err
    rows = {r["params.mode"]: r for r in sweep.rows()}
    assert {m: rows[m]["state"] for m in modes} == {
        "huge": "FAILED",
        "extra": "COMPLETE",
        "odd": "COMPLETE",
        "ok": "COMPLETE",
    }
    failed = {f["trial_id"]: f["error"] for f in sweep.summary()["failed"]}
    assert failed[rows["huge"]["trial_id"]].startswith("nan_metric: loss = ")
    assert rows["extra"]["big"].startswith("<an int of") and len(rows["extra"]["text"]) <= 1000
    assert sweep.summary()["trials"]["RUNNING"] == 0
    sweep.run().ok()  # a resume finds nothing left running


@pytest.mark.parametrize(
    ("code", "line", "what"),
    [
        pytest.param("def f(config, trial:\n    return 1\n", 1, "syntax error", id="syntax"),
        pytest.param("import os\nX = 1 / 0\n", 2, "raised ZeroDivisionError", id="raises"),
    ],
)
def test_objective_code_that_does_not_import_stops_the_run_before_any_trial(
    sweep: Sweep, code: str, line: int, what: str
) -> None:
    (sweep.dir / "user_code.py").write_text(code, encoding="utf-8")
    sweep.write("badcode")
    sweep.edit(objective={"function": "user_code.py:f", "metric": "loss", "mode": "min"})
    run = sweep.run()
    assert run.code == 1 and "Traceback" not in run.err and "bug in sweepspec" not in run.err
    assert f"user_code.py:{line}: " in run.err and what in run.err
    assert "spec.yaml:" in run.err  # located at objective.function in the spec too
    assert not (sweep.run_dir / "trials.csv").exists()


@pytest.mark.parametrize("mode", ["return", "hang"])
def test_no_descendant_of_a_trial_outlives_it(sweep: Sweep, mode: str) -> None:
    """A grandchild that calls setsid() leaves the trial's process group: it ends with its
    trial all the same (the trial process and its parent are child subreapers)."""
    import psutil

    sweep.write(
        "escapes",
        function="escapes",
        objective={"config": {"mode": mode}},
        trials={"num_samples": 2, "timeout": 2},
    )
    sweep.run().ok()
    pids = [int(p.read_text()) for p in sweep.dir.glob("escaped-*.pid")]
    assert len(pids) == 2

    def alive(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return False

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    assert not [p for p in pids if alive(p)]


def test_an_expression_that_fails_at_a_proposed_point_is_a_located_error(sweep: Sweep) -> None:
    """A derived value that cannot be evaluated at a point validate's sample did not meet
    stops the run with the key, the point and the line; no trial is left RUNNING."""
    sweep.write(
        "evalerr",
        space={"x": {"uniform": [0.0, 1.0]}, "k": {"int": [0, 100000]}},
        derived={"div": "1 / (k - 77777)"},
        try_first=[{"x": 0.5, "k": 77777}],
        trials={"num_samples": 3},
    )
    run = sweep.run()
    assert run.code != 0 and "Traceback" not in run.err, run.err
    assert "spec.yaml:" in run.err and "derived.div: cannot be evaluated at" in run.err, run.err
    assert "k=77777" in run.err and "division by zero" in run.err
    assert sweep.configs() == []  # no trial ran with it
    status = sweep.command("status", "spec.yaml", "--format", "json").ok()
    assert json.loads(status.out)["trials"]["RUNNING"] == 0


def test_max_failed_stops_the_sweep(sweep: Sweep) -> None:
    sweep.write(
        "maxfail",
        function="modes",
        space={"mode": {"choice": ["raise"]}, "x": {"uniform": [0.0, 1.0]}},
        trials={"num_samples": 12, "max_failed": 2},
        resources={"max_concurrent": 1},
    )
    run = sweep.run()
    assert run.code == 1, run.err
    assert "max_failed: 2 trials failed" in run.err and "Traceback" not in run.err
    rows = sweep.rows()
    assert Counter(r["state"] for r in rows) == {"FAILED": 2}  # one at a time: exactly two


# -- stops ----------------------------------------------------------------------------------


def test_stop_trial_ends_a_trial_as_complete(sweep: Sweep) -> None:
    sweep.write(
        "stoptrial",
        objective={"config": {"steps": 9}},
        stop={"trial": {"training_iteration": 3}},
        trials={"num_samples": 3},
    )
    sweep.run().ok()
    rows = sweep.rows()
    assert [r["state"] for r in rows] == ["COMPLETE"] * 3
    assert all(int(r["iterations"]) == 3 for r in rows)
    for r in rows:  # the value it reported at its third step is its final value
        x, y = float(r["params.x"]), float(r["params.y"])
        assert float(r["loss"]) == pytest.approx((x - 0.3) ** 2 + (y - 0.1) ** 2 + 1 / 3)


def test_target_stops_the_sweep_and_running_trials_finish(sweep: Sweep) -> None:
    sweep.write(
        "target",
        objective={"config": {"seconds": 0.3}},
        try_first=[{"x": 0.3, "y": 0.1}],  # loss 1.0 at once: the target
        stop={"sweep": {"target": {"loss": 1.001}}},
        trials={"num_samples": 40},
    )
    run = sweep.run().ok()
    assert "[stopped: target]" in run.err
    rows = sweep.rows()
    assert 1 <= len(rows) < 40
    assert {r["state"] for r in rows} == {"COMPLETE"}  # nothing left running


def test_time_budget_stops_launching_and_running_trials_finish(sweep: Sweep) -> None:
    sweep.write(
        "budget",
        objective={"config": {"seconds": 0.5}},
        trials={"num_samples": 60},
        stop={"sweep": {"time_budget": 4}},
    )
    run = sweep.run().ok()
    assert "[stopped: time_budget]" in run.err
    rows = sweep.rows()
    assert 2 <= len(rows) < 60
    assert {r["state"] for r in rows} == {"COMPLETE"}  # the trials in flight ran to their end
    ends = [e for e in sweep.log() if e["event"] == "end"]
    assert len(ends) == len(rows)


# -- the budget and the results files ----------------------------------------------------------


def test_exactly_num_samples_and_the_same_results_files(sweep: Sweep) -> None:
    sweep.write(
        "files",
        space={"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}, "z": 3},
        objective={"config": {"steps": 2}},
        trials={"num_samples": 5},
    )
    sweep.run().ok()
    rows = sweep.rows()
    assert sweep.columns() == ["trial_id", "state", "loss", "params.x", "params.y", *COLUMNS_TAIL]
    assert sorted(int(r["trial_id"]) for r in rows) == list(range(5))
    assert all(r["iterations"] == "2" and float(r["duration_s"]) > 0 for r in rows)
    for r in rows:  # ISO 8601 in UTC, in order, around the trial's duration
        started, ended = (_utc(r["started_at"]), _utc(r["ended_at"]))
        assert started <= ended and (ended - started).total_seconds() >= 0.8 * float(
            r["duration_s"]
        )
        reports = read_reports(RunDir(sweep.run_dir), r["trial_id"])  # every report, by step
        assert [x["step"] for x in reports] == [1, 2]
        assert reports[-1]["loss"] == pytest.approx(float(r["loss"]))
    best = min(rows, key=lambda r: float(r["loss"]))
    text = sweep.best()
    assert text.startswith(f"# best trial {best['trial_id']}: loss={float(best['loss'])}")
    config = yaml.safe_load(text)
    assert config["x"] == pytest.approx(float(best["params.x"])) and config["z"] == 3
    assert config["log_dir"] == str(sweep.dir)  # the whole config: objective.config too
    summary = sweep.summary()
    assert set(summary) >= {"name", "backend", "num_samples", "trials", "best", "failed"}
    assert summary["backend"] == sweep.backend and summary["num_samples"] == 5
    assert summary["trials"] == {"COMPLETE": 5, "PRUNED": 0, "FAILED": 0, "RUNNING": 0}
    assert [b["trial_id"] for b in summary["best"]] == [best["trial_id"]]
    assert isinstance(summary["elapsed_s"], float) and summary["elapsed_s"] > 0
    # the same spec again runs nothing; a larger budget extends the run to exactly that
    sweep.run().ok()
    assert len(sweep.configs()) == 5
    sweep.run("trials.num_samples=7").ok()
    assert sorted(int(r["trial_id"]) for r in sweep.rows()) == list(range(7))
    assert len(sweep.configs()) == 7


def test_a_changed_spec_is_refused_until_fresh(sweep: Sweep) -> None:
    sweep.write("changed", trials={"num_samples": 2})
    sweep.run().ok()
    sweep.edit(space={"x": {"uniform": [0.0, 0.5]}, "y": {"uniform": [-1.0, 1.0]}})
    refused = sweep.run()
    assert refused.code == 1 and "Traceback" not in refused.err
    assert "the spec changed since this run was created (space)" in refused.err
    assert len(sweep.configs()) == 2  # nothing ran
    fresh = sweep.run("--fresh").ok()
    assert "previous run kept in" in fresh.out
    assert len(sweep.rows()) == 2
    assert all(0.0 <= float(r["params.x"]) <= 0.5 for r in sweep.rows())
    assert len(list(sweep.dir.glob("runs/changed.old-*"))) == 1


# -- a score over several metrics -------------------------------------------------------------

SCORE_OBJECTIVE = {
    "metric": None,
    "mode": "max",
    "metrics": ["accuracy", "latency_ms"],
    "score": "accuracy - 0.1 * latency_ms",
}


def test_a_score_is_what_is_pruned_ranked_and_shown_beside_its_metrics(sweep: Sweep) -> None:
    """Three trials in turn under ASHA: x=0.6 is the most accurate, x=0.5 has the best score,
    x=0.7 leads on accuracy at the first rung but is slow (latency 10 ms): pruned there, on
    its score."""
    sweep.write(
        "score",
        function="two_metrics",
        objective={**SCORE_OBJECTIVE, "config": {"steps": 4}},
        try_first=[{"x": 0.6, "y": 0.2}, {"x": 0.5, "y": 0.0}, {"x": 0.7, "y": 1.0}],
        space={"x": {"uniform": [0.0, 1.0]}, "y": {"uniform": [0.0, 1.0]}},
        scheduler={"type": "asha", "max_t": 4, "grace_period": 1, "reduction_factor": 2},
        resources={"max_concurrent": 1},
        trials={"num_samples": 3},
    )
    sweep.run().ok()
    rows = {r["params.x"]: r for r in sweep.rows()}
    assert {x: r["state"] for x, r in rows.items()} == {
        "0.6": "COMPLETE",
        "0.5": "COMPLETE",
        "0.7": "PRUNED",
    }
    assert rows["0.7"]["iterations"] == "1"  # its accuracy (0.9) led the rung, its score did not
    assert sweep.columns() == [
        *("trial_id", "state", "score", "accuracy", "latency_ms", "params.x", "params.y"),
        *COLUMNS_TAIL,
    ]
    for r in rows.values():  # every metric is recorded, and the score of its values beside them
        assert float(r["score"]) == pytest.approx(
            float(r["accuracy"]) - 0.1 * float(r["latency_ms"])
        )
    best, accurate = rows["0.5"], rows["0.6"]
    assert float(accurate["accuracy"]) > float(best["accuracy"])  # the best is by score
    assert float(best["score"]) == pytest.approx(1 - 0.2**2 - 0.1 / 4)
    summary = sweep.summary()
    assert summary["directions"] == {"score": "max"}
    assert summary["score"] == "accuracy - 0.1 * latency_ms"
    assert [b["trial_id"] for b in summary["best"]] == [best["trial_id"]]
    assert set(summary["best"][0]["metrics"]) >= {"score", "accuracy", "latency_ms"}
    text = sweep.best()
    assert text.startswith(
        f"# best trial {best['trial_id']}: score={float(best['score'])} "
        f"(accuracy={float(best['accuracy'])}, latency_ms=0.0)\n"
    )
    assert yaml.safe_load(text)["x"] == 0.5
    reports = read_reports(RunDir(sweep.run_dir), best["trial_id"])  # each report's own score
    assert [r["score"] for r in reports] == pytest.approx([0.96 - 0.1 / s for s in (1, 2, 3, 4)])
    table = sweep.command("results", "spec.yaml", "--no-plots").ok()
    assert "score (max)" in table.out


def test_a_score_fails_a_trial_as_a_metric_does_and_stops_name_it(sweep: Sweep) -> None:
    modes = ["gap", "nan", "overflow", "missing", "own", "ok"]
    sweep.write(
        "scorefail",
        function="two_metrics",
        objective={**SCORE_OBJECTIVE, "config": {"steps": 4}},
        space={"mode": {"choice": modes}, "x": {"uniform": [0.0, 1.0]}, "y": 0.0},
        try_first=[{"mode": m, "x": 0.7 if m == "ok" else 0.5} for m in modes],
        stop={"trial": {"score": 0.94}, "sweep": {"target": {"score": 0.94}}},
        trials={"num_samples": 6},
    )
    run = sweep.run().ok()
    assert "[stopped: target]" in run.err  # the ok trial's score reached 0.94
    rows = {r["params.mode"]: r for r in sweep.rows()}
    assert {m: rows[m]["state"] for m in modes} == {
        "gap": "COMPLETE",
        "nan": "FAILED",
        "overflow": "FAILED",
        "missing": "FAILED",
        "own": "FAILED",
        "ok": "COMPLETE",
    }
    failed = {f["trial_id"]: f["error"] for f in sweep.summary()["failed"]}
    errors = {m: failed.get(rows[m]["trial_id"]) for m in modes}
    assert errors["nan"].startswith("nan_metric: latency_ms = ") and "nan" in errors["nan"][24:]
    assert errors["overflow"].startswith(
        "nan_metric: the score 'accuracy - 0.1 * latency_ms' cannot be computed"
    )
    assert errors["missing"].startswith("missing_metric: the trial did not report 'latency_ms'")
    assert errors["own"].startswith("reserved_metric: the trial reported 'score' itself")
    # stop.trial on the score (a bare number: >=, the score's mode is max) ends ok at step 2
    assert rows["ok"]["iterations"] == "2"
    assert float(rows["ok"]["score"]) == pytest.approx(0.95)
    # a report without latency_ms has no score: the scheduler never saw one
    gap = read_reports(RunDir(sweep.run_dir), rows["gap"]["trial_id"])
    assert [r["step"] for r in gap if "score" in r] == [2, 4]
    assert float(rows["gap"]["score"]) == pytest.approx(0.96 - 0.1 / 4)
    assert yaml.safe_load(sweep.best())["mode"] == "ok"


# -- resume after SIGKILL ----------------------------------------------------------------------


@pytest.mark.parametrize("seed", [20261201, 7, 4242])
def test_resume_after_sigkill_runs_each_trial_exactly_once(sweep: Sweep, seed: int) -> None:
    """Killed (the whole process group) while trials run, then resumed until done: every
    trial that had finished is kept as it was, none is recorded twice, and exactly
    ``num_samples`` finish. The kill schedule is seeded (one schedule per seed) and printed;
    each kill is proved to land while a trial runs."""
    rng = random.Random(seed)
    num_samples = 6
    sweep.write(
        "kill9",
        objective={"config": {"steps": 4, "seconds": 0.25}},
        trials={"num_samples": num_samples},
    )
    kills = 0
    finished_before: dict[str, dict[str, str]] = {}
    for round_ in range(2):
        started = len(sweep.log())
        proc = sweep.popen()
        deadline = time.monotonic() + 150
        running = False
        while time.monotonic() < deadline and proc.poll() is None:
            events = sweep.log()[started:]
            starts = {e["trial"] for e in events if e["event"] == "start"}
            ends = {e["trial"] for e in events if e["event"] == "end"}
            if starts - ends:  # a trial is running now: the kill lands mid-trial
                running = True
                break
            time.sleep(0.05)
        if proc.poll() is not None:  # a resumed run can finish before a trial starts
            assert proc.returncode == 0, (sweep.dir / "stderr.txt").read_text()
            break
        delay = rng.uniform(0.1, 1.5)
        print(f"seed {seed}: kill {round_} {delay:.2f} s after a trial started")
        time.sleep(delay)
        assert running
        sweep.kill(proc)
        kills += 1
        if (sweep.run_dir / "trials.csv").exists():
            for r in sweep.rows():
                if r["state"] == "COMPLETE":
                    finished_before.setdefault(r["trial_id"], r)
    assert kills >= 1
    run = sweep.run().ok()  # (a subprocess for the optuna backend, in this process for ray)
    assert "Traceback" not in run.err
    rows = sweep.rows()
    assert len(rows) == num_samples and {r["state"] for r in rows} == {"COMPLETE"}
    assert sorted(int(r["trial_id"]) for r in rows) == list(range(num_samples))
    by_id = _by_id(rows)
    for tid, before in finished_before.items():  # what had finished is kept, unchanged
        assert by_id[tid]["loss"] == before["loss"] and by_id[tid]["params.x"] == before["params.x"]
    params = Counter((r["params.x"], r["params.y"]) for r in rows)
    assert max(params.values()) == 1  # no config ran twice to completion
    ends = Counter(_config_key(e) for e in _ends_with_configs(sweep))
    assert len(ends) == num_samples  # every finished trial ran to its end at least once
    sweep.run().ok()  # a re-run of a finished sweep runs nothing
    assert len(sweep.rows()) == num_samples


def _ends_with_configs(sweep: Sweep) -> list[dict[str, Any]]:
    """The configs of the attempts that ran to their end (an attempt's start and end events
    share its trial id; the last start of an id before an end is that attempt's)."""
    out = []
    last: dict[str, dict[str, Any]] = {}
    for e in sweep.log():
        if e["event"] == "start":
            last[e["trial"]] = e["config"]
        elif e["trial"] in last:
            out.append(last[e["trial"]])
    return out


def _config_key(config: dict[str, Any]) -> tuple[float, float]:
    return (round(float(config["x"]), 12), round(float(config["y"]), 12))
