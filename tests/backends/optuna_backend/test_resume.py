"""Resume on the Optuna backend: re-running a spec continues its run, loses nothing and runs
nothing twice; also after SIGKILLs of the whole process group, Ctrl-C, a torn journal and a
changed spec (refused until ``--fresh``)."""

from __future__ import annotations

import contextlib
import os
import pickle
import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("optuna")
pytest.importorskip("psutil")

from tests.builders import (
    OBJECTIVES,
    attempts,
    curve_spec,
    env,
    finish,
    journal_ok,
    kill_group,
    load_study,
    no_leftovers,
    popen,
    read_csv,
    run_cli,
    run_dir,
    run_ok,
    spec,
    states,
    wait_until,
    write_spec,
)

TERMINAL = {"COMPLETE", "PRUNED", "FAILED"}


def n_trials(tmp_path: Path, name: str) -> int:
    return len(load_study(tmp_path, name).get_trials())


def unfinished(tmp_path: Path, name: str) -> list[Any]:
    return [
        t for t in load_study(tmp_path, name).get_trials() if t.state.name in ("RUNNING", "WAITING")
    ]


def complete_in_study(tmp_path: Path, name: str) -> dict[str, tuple[Any, Any]]:
    """COMPLETE logical trials in the journal: id -> (params, values)."""
    out: dict[str, tuple[Any, Any]] = {}
    for logical, ts in attempts(load_study(tmp_path, name)).items():
        for t in ts:
            if t.state.name == "COMPLETE":
                out[logical] = (t.params, t.values)
    return out


# -- (a)-(c): re-run, extend, refuse a changed spec ----------------------------------------


def test_rerun_of_a_finished_sweep_adds_nothing(tmp_path: Path) -> None:
    write_spec(tmp_path, spec("done", trials={"num_samples": 4}))
    run_ok(tmp_path)
    run = run_dir(tmp_path, "done")
    csv_before = (run / "trials.csv").read_bytes()
    best_before = (run / "best.yaml").read_bytes()
    count = n_trials(tmp_path, "done")
    proc = run_ok(tmp_path)
    assert not re.search(r"^trial \d+ ", proc.stderr, re.MULTILINE)  # no trial ran
    assert n_trials(tmp_path, "done") == count == 4
    assert (run / "trials.csv").read_bytes() == csv_before
    assert (run / "best.yaml").read_bytes() == best_before


def test_raising_num_samples_extends_the_run(tmp_path: Path) -> None:
    write_spec(
        tmp_path, spec("extend", searcher={"type": "tpe", "seed": 3}, trials={"num_samples": 4})
    )
    run_ok(tmp_path)
    before = read_csv(tmp_path, "extend")
    run_ok(tmp_path, "trials.num_samples=7")
    after = read_csv(tmp_path, "extend")
    assert states(after) == {"COMPLETE": 7}
    assert len({r["trial_id"] for r in after}) == 7
    kept = {r["trial_id"]: r for r in after}
    for r in before:  # completed trials are kept, unchanged
        assert kept[r["trial_id"]] == r
    assert n_trials(tmp_path, "extend") == 7
    run_ok(tmp_path, "trials.num_samples=7")
    assert n_trials(tmp_path, "extend") == 7


@pytest.mark.parametrize(
    ("change", "section"),
    [
        pytest.param(
            {"space": {"x": {"uniform": [-2.0, 1.0]}, "y": {"uniform": [-1.0, 1.0]}}},
            "space",
            id="space",
        ),
        pytest.param({"searcher": {"type": "tpe", "seed": 0}}, "searcher", id="searcher"),
        pytest.param({"objective": {"mode": "max"}}, "objective", id="objective"),
        pytest.param({"constraints": ["x <= 0.5"]}, "constraints", id="constraints"),
    ],
)
def test_changed_spec_is_refused_until_fresh(
    tmp_path: Path, change: dict[str, Any], section: str
) -> None:
    write_spec(tmp_path, spec("changed", trials={"num_samples": 3}))
    run_ok(tmp_path)
    run = run_dir(tmp_path, "changed")
    journal = (run / "study.journal").read_bytes()
    csv_before = (run / "trials.csv").read_bytes()
    write_spec(tmp_path, spec("changed", trials={"num_samples": 3}, **change))
    proc = run_cli(tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "spec changed" in proc.stderr and f"({section})" in proc.stderr
    assert "--fresh" in proc.stderr
    assert (run / "study.journal").read_bytes() == journal  # nothing started
    assert (run / "trials.csv").read_bytes() == csv_before

    proc = run_ok(tmp_path, "--fresh")
    old = sorted(run.parent.glob("changed.old-*"))
    assert len(old) == 1
    assert (old[0] / "study.journal").read_bytes() == journal  # the old run is kept aside
    assert (old[0] / "trials.csv").read_bytes() == csv_before
    assert states(read_csv(tmp_path, "changed")) == {"COMPLETE": 3}
    assert len(attempts(load_study(tmp_path, "changed"))) == 3


# -- (d): SIGKILL of the whole process group, again and again --------------------------------


@pytest.mark.slow
def test_sigkill_resume_is_exactly_once(tmp_path: Path) -> None:
    name, num_samples, kills = "killed", 16, 5
    write_spec(
        tmp_path,
        curve_spec(
            name,
            epochs=4,
            step_seconds=0.15,
            num_samples=num_samples,
            searcher={"type": "tpe", "seed": 11},
        ),
    )
    run_ok(tmp_path, "trials.num_samples=4")  # a finished part: trials.csv exists before kills
    rng = random.Random(int(os.environ.get("SWEEPSPEC_KILL_SEED", "20261123")))  # soak: vary
    seen_csv: dict[str, dict[str, str]] = {}
    seen_study: dict[str, tuple[Any, Any]] = {}
    progress = []
    for _ in range(kills):
        proc = popen(tmp_path)
        time.sleep(rng.uniform(0.5, 2.5))
        err = kill_group(proc)
        assert "Traceback" not in err, err
        assert no_leftovers(tmp_path)  # the trial processes died with their driver
        if (run_dir(tmp_path, name) / "trials.csv").exists():
            for r in read_csv(tmp_path, name):
                if r["state"] == "COMPLETE":
                    seen_csv[r["trial_id"]] = r
        done = {}
        if (run_dir(tmp_path, name) / "study.journal").exists():
            with contextlib.suppress(KeyError):  # KeyError: killed before the study existed
                done = complete_in_study(tmp_path, name)
        for logical, value in done.items():
            assert seen_study.setdefault(logical, value) == value
        progress.append(len(done))
    assert progress == sorted(progress)  # completed work never goes back
    assert len(seen_csv) >= 4

    run_ok(tmp_path, timeout=120)
    rows = read_csv(tmp_path, name)
    ids = [r["trial_id"] for r in rows]
    assert len(ids) == len(set(ids)) == num_samples
    assert {r["state"] for r in rows} <= TERMINAL
    assert sum(states(rows).get(s, 0) for s in TERMINAL) == num_samples
    study = load_study(tmp_path, name)
    assert not [t for t in study.get_trials() if t.state.name in ("RUNNING", "WAITING")]
    by_logical = attempts(study)
    assert sorted(by_logical) == sorted(ids)
    for logical, ts in by_logical.items():
        terminal = [
            t for t in ts if t.state.name in ("COMPLETE", "PRUNED") or t.user_attrs.get("final")
        ]
        assert len(terminal) == 1, logical  # exactly one terminal record a logical trial
        others = [t for t in ts if t not in terminal]
        assert all(t.state.name == "FAIL" and t.user_attrs.get("orphaned") for t in others)
        assert all(t.user_attrs["attempt"] == 0 for t in ts)  # a kill is not a counted retry
    orphaned = sum(1 for t in study.get_trials() if t.user_attrs.get("orphaned"))
    assert orphaned <= kills * 3  # at most what was in flight (2) or being asked (1) a kill
    final = {r["trial_id"]: r for r in rows}
    now = complete_in_study(tmp_path, name)
    for logical, (params, values) in seen_study.items():
        assert final[logical]["state"] == "COMPLETE"
        assert now[logical] == (params, values)
        assert float(final[logical]["loss"]) == values[0]
        assert float(final[logical]["params.lr"]) == params["lr"]
    for logical, row in seen_csv.items():
        assert {k: final[logical][k] for k in ("state", "loss", "params.lr", "iterations")} == {
            k: row[k] for k in ("state", "loss", "params.lr", "iterations")
        }
    journal_ok(run_dir(tmp_path, name) / "study.journal")
    count = len(study.get_trials())
    run_ok(tmp_path)
    assert n_trials(tmp_path, name) == count
    assert read_csv(tmp_path, name) == rows


def _checkpoint_step(path: Path) -> int:
    try:
        with open(path, "rb") as fh:
            return int(pickle.load(fh)["step"])
    except (OSError, EOFError, pickle.UnpicklingError):
        return 0


def test_killed_trial_resumes_from_its_checkpoint(tmp_path: Path) -> None:
    name, epochs = "ckpt", 8
    write_spec(tmp_path, curve_spec(name, epochs=epochs, step_seconds=0.25, num_samples=1))
    ckpt = run_dir(tmp_path, name) / "trials" / "0" / "checkpoint.pkl"
    proc = popen(tmp_path)
    assert wait_until(lambda: _checkpoint_step(ckpt) >= 2, timeout=30)
    kill_group(proc)
    step = _checkpoint_step(ckpt)
    assert 2 <= step < epochs
    run_ok(tmp_path)
    log = (run_dir(tmp_path, name) / "trials" / "0" / "log.txt").read_text()
    assert log.count("--- attempt") == 2
    ts = sorted(attempts(load_study(tmp_path, name))["0"], key=lambda t: t.number)
    assert [t.state.name for t in ts] == ["FAIL", "COMPLETE"]
    assert ts[0].user_attrs["orphaned"]
    # the count goes on from the checkpoint's step (step + epochs had it restarted from scratch)
    assert ts[1].user_attrs["iterations"] == epochs
    lr = ts[1].params["lr"]
    assert ts[1].values[0] == pytest.approx(_curve_final(lr) + 1 / epochs)
    [row] = read_csv(tmp_path, name)
    assert row["state"] == "COMPLETE" and row["trial_id"] == "0"


def _curve_final(lr: float) -> float:
    import math

    return (math.log10(lr) + 2.5) ** 2


def test_trial_asked_but_never_started_does_not_block_the_run(tmp_path: Path) -> None:
    """A driver killed between ``ask`` and launching leaves a RUNNING trial with no owner; if
    its params break a constraint, its re-queue is rejected: the run must still finish."""
    write_spec(tmp_path, spec("asked", constraints=["x + y <= 0"], trials={"num_samples": 2}))
    run_ok(tmp_path)
    study = load_study(tmp_path, "asked")
    study.enqueue_trial({"x": 0.9, "y": 0.9})
    orphan = study.ask()  # as the dead driver did: suggested, never started
    orphan.suggest_float("x", -1.0, 1.0)
    orphan.suggest_float("y", -1.0, 1.0)
    run_ok(tmp_path, "trials.num_samples=4", timeout=60)
    rows = read_csv(tmp_path, "asked")
    assert states(rows) == {"COMPLETE": 4}
    assert all(float(r["params.x"]) + float(r["params.y"]) <= 0 for r in rows)
    assert not unfinished(tmp_path, "asked")


HOLD_JOURNAL_LOCK = """
import fcntl, os, sys, time
journal = sys.argv[1]
fd = os.open(journal, os.O_WRONLY | os.O_APPEND)
fcntl.flock(fd, fcntl.LOCK_EX)                          # sweepspec's journal write lock
os.close(os.open(journal + ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY))  # Optuna's
os.write(fd, b'{"op_code":4,"worker_id":"dead","stu')  # killed mid-record
print("locked", flush=True)
time.sleep(600)
"""


def test_writer_killed_holding_the_journal_lock_does_not_stall(tmp_path: Path) -> None:
    write_spec(tmp_path, spec("lock", trials={"num_samples": 2}))
    run_ok(tmp_path)
    journal = run_dir(tmp_path, "lock") / "study.journal"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_JOURNAL_LOCK, str(journal)], stdout=subprocess.PIPE
    )
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"locked\n"
    holder.kill()
    holder.communicate(timeout=30)
    started = time.monotonic()
    run_ok(tmp_path, "trials.num_samples=4")
    assert time.monotonic() - started < 20  # not Optuna's 30 s wait for a stale lock file
    assert states(read_csv(tmp_path, "lock")) == {"COMPLETE": 4}
    assert list(journal.parent.glob("study.journal.corrupt-*"))  # the torn record went aside
    journal_ok(journal)


# -- (e): a torn journal record ---------------------------------------------------------------


def test_torn_journal_is_repaired(tmp_path: Path) -> None:
    write_spec(tmp_path, spec("torn", trials={"num_samples": 3}))
    run_ok(tmp_path)
    before = read_csv(tmp_path, "torn")
    journal = run_dir(tmp_path, "torn") / "study.journal"
    with open(journal, "ab") as fh:
        fh.write(b'{"op_code":4,"worker_id":"x","study_id":0,"dat')
    proc = run_ok(tmp_path, "trials.num_samples=5")
    assert "repaired the damaged journal" in proc.stderr
    backups = list(journal.parent.glob("study.journal.corrupt-*"))
    assert len(backups) == 1
    assert backups[0].read_bytes().endswith(b'"study_id":0,"dat')
    journal_ok(journal)
    rows = read_csv(tmp_path, "torn")
    assert states(rows) == {"COMPLETE": 5}
    assert rows[:3] == before


def test_a_garbage_line_in_the_middle_loses_no_finished_trial(tmp_path: Path) -> None:
    write_spec(tmp_path, spec("garbled", trials={"num_samples": 6}))
    run_ok(tmp_path)
    before = read_csv(tmp_path, "garbled")
    count = n_trials(tmp_path, "garbled")
    journal = run_dir(tmp_path, "garbled") / "study.journal"
    lines = journal.read_bytes().splitlines(keepends=True)
    middle = len(lines) // 2
    journal.write_bytes(b"".join(lines[:middle]) + b"\x00\xffgarbage\n" + b"".join(lines[middle:]))
    status = subprocess.run(
        [sys.executable, "-m", "sweepspec", "status", "spec.yaml"],
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0 and "Traceback" not in status.stderr, status.stderr
    assert "6/6 done" in status.stdout
    run_ok(tmp_path)  # a resume: nothing was lost, so nothing runs again
    assert read_csv(tmp_path, "garbled") == before
    assert n_trials(tmp_path, "garbled") == count  # no trial was asked or run anew
    journal_ok(journal)


def _vandal_spec(tmp_path: Path, name: str, act: str) -> None:
    write_spec(
        tmp_path,
        spec(
            name,
            objective={
                "function": f"{OBJECTIVES}:vandal",
                "config": {"log_dir": str(tmp_path), "act": act, "seconds": 0.05},
            },
            space={"x": {"uniform": [0.0, 1.0]}},
            trials={"num_samples": 8},
            resources={"max_concurrent": 1},
        ),
    )


def test_an_objective_that_garbles_the_journal_gets_a_clean_error_and_a_run_that_resumes(
    tmp_path: Path,
) -> None:
    _vandal_spec(tmp_path, "garble", "garble")
    proc = run_cli(tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "was damaged while the sweep ran" in proc.stderr
    done = {r["trial_id"]: r for r in read_csv(tmp_path, "garble") if r["state"] == "COMPLETE"}
    proc = run_ok(tmp_path)
    assert "repaired the damaged journal" in proc.stderr
    rows = read_csv(tmp_path, "garble")
    assert states(rows) == {"COMPLETE": 8}
    for tid, row in done.items():  # what had finished is kept as it was
        assert next(r for r in rows if r["trial_id"] == tid) == row


def test_an_objective_that_deletes_the_run_directory_gets_a_clean_error(tmp_path: Path) -> None:
    _vandal_spec(tmp_path, "deleted", "delete")
    proc = run_cli(tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "is gone" in proc.stderr
    run_ok(tmp_path)  # the next run starts over, cleanly
    assert states(read_csv(tmp_path, "deleted")) == {"COMPLETE": 8}


# -- (f): Ctrl-C --------------------------------------------------------------------------------


def test_ctrl_c_exits_130_and_resume_completes(tmp_path: Path) -> None:
    name, num_samples = "interrupted", 6
    write_spec(tmp_path, curve_spec(name, epochs=4, step_seconds=0.3, num_samples=num_samples))
    trials = run_dir(tmp_path, name) / "trials"
    proc = popen(tmp_path)
    assert wait_until(lambda: trials.is_dir() and any(trials.glob("*/checkpoint.pkl")), 30)
    proc.send_signal(signal.SIGINT)  # the driver only: trial processes ignore SIGINT
    err = finish(proc)
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert no_leftovers(tmp_path)
    study = load_study(tmp_path, name)
    assert not [t for t in study.get_trials() if t.state.name == "RUNNING"]
    interrupted = [t for t in study.get_trials() if t.user_attrs.get("interrupted")]
    assert interrupted  # the trials in flight were stopped and queued again
    run_ok(tmp_path)
    rows = read_csv(tmp_path, name)
    assert len(rows) == len({r["trial_id"] for r in rows}) == num_samples
    assert states(rows) == {"COMPLETE": num_samples}
    assert not unfinished(tmp_path, name)
    for t in interrupted:
        assert any(r["trial_id"] == t.user_attrs["logical"] for r in rows)
