"""``status``, ``results`` and ``run`` around a run in progress, killed, interrupted and
resumed (``sweepspec run`` in a subprocess on a slow objective), and around a spec that no
longer matches its run (a warning; the run's files stay as they are)."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from sweepspec.cli import main
from tests.builders import (
    curve_spec,
    finish,
    kill_group,
    popen,
    run_cli,
    run_dir,
    run_ok,
    spec,
    write_spec,
)

Capsys = pytest.CaptureFixture[str]

TOTAL = 40  # far more than the tests let run: each stops it, then resumes with fewer
SLOW = curve_spec("live", num_samples=TOTAL, epochs=4, step_seconds=0.3)


def _wait_for_finished(tmp_path: Path, at_least: int, deadline_s: float = 90) -> None:
    """Until the run's summary.json counts ``at_least`` finished trials."""
    summary = run_dir(tmp_path, "live") / "summary.json"
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            trials = json.loads(summary.read_text())["trials"]
            if trials["COMPLETE"] + trials["PRUNED"] + trials["FAILED"] >= at_least:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.1)
    pytest.fail(f"the run did not finish {at_least} trial(s) in {deadline_s} s")


def _status(capsys: Capsys) -> dict[str, Any]:
    assert main(["status", "spec.yaml", "--format", "json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


@pytest.mark.parametrize("backend", ["optuna", pytest.param("ray", marks=pytest.mark.ray)])
def test_status_of_a_run_in_progress_killed_and_resumed(
    tmp_path: Path, capsys: Capsys, backend: str
) -> None:
    write_spec(tmp_path, {**SLOW, "backend": {"type": backend}})
    proc = popen(tmp_path)
    try:
        _wait_for_finished(tmp_path, 1)
        live = _status(capsys)
        assert main(["status", "spec.yaml"]) == 0
        text = capsys.readouterr().out
        assert main(["results", "spec.yaml", "--format", "json", "--no-plots"]) == 0
        partial = json.loads(capsys.readouterr().out)  # results of a run in progress
    finally:
        kill_group(proc)  # SIGKILL: what a killed run leaves behind
    assert partial["trials"]["COMPLETE"] >= 1 and 1 <= len(partial["top"]) < TOTAL
    done = sum(live["trials"][s] for s in ("COMPLETE", "PRUNED", "FAILED"))
    assert live["num_samples"] == TOTAL and 1 <= done < TOTAL
    assert live["running"] is True and live["concurrency"] == 2
    assert live["elapsed_s"] > 0  # meta.json's run time, kept current while the run goes on
    assert live["eta_s"] is not None and live["eta_s"] > 0
    assert f"{done}/{TOTAL} done" in text and "recorded" in text and "ETA " in text
    assert "at a time, at the finished trials' mean duration" in text

    killed = _status(capsys)
    finished = sum(killed["trials"][s] for s in ("COMPLETE", "PRUNED", "FAILED"))
    assert finished >= done and killed["elapsed_s"] >= live["elapsed_s"] > 0

    # the rest of the run: the trials the kill left in flight run again (at least one more)
    budget = finished + max(1, killed["trials"]["RUNNING"])
    proc = run_ok(tmp_path, f"trials.num_samples={budget}")
    assert f"resuming: {finished} of {budget} done" in proc.stderr
    after = _status(capsys)
    assert after["num_samples"] == budget  # the run's budget, the override included
    assert after["trials"]["COMPLETE"] == budget and after["running"] is False
    assert after["eta_s"] == 0.0
    assert after["elapsed_s"] > killed["elapsed_s"]  # both sessions' time
    assert main(["status", "spec.yaml"]) == 0
    text = capsys.readouterr().out
    assert f"{budget}/{budget} done" in text and "ETA" not in text and "recorded" not in text


def test_ctrl_c_says_how_to_continue(tmp_path: Path) -> None:
    write_spec(tmp_path, SLOW)
    proc = popen(tmp_path)
    try:
        _wait_for_finished(tmp_path, 1)
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
        err = finish(proc)
    finally:
        if proc.poll() is None:
            kill_group(proc)
    assert proc.returncode == 130, err
    assert err.rstrip().endswith("interrupted: run the same command again to resume"), err
    assert "Traceback" not in err


def _files(rundir: Path) -> dict[str, str]:
    """Every file of the run directory (but its logs and locks) by its hash."""
    return {
        str(p.relative_to(rundir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(rundir.rglob("*"))
        if p.is_file() and p.suffix not in (".lock", ".txt")
    }


def test_a_changed_spec_is_warned_about_and_changes_nothing(tmp_path: Path, capsys: Capsys) -> None:
    write_spec(tmp_path, spec("moved"))
    run_ok(tmp_path)
    assert main(["results", "spec.yaml", "--format", "json"]) == 0  # plots and all, once
    capsys.readouterr()
    rundir = run_dir(tmp_path, "moved")
    before = _files(rundir)
    assert "trials.csv" in before and "best.yaml" in before and "summary.json" in before
    changed = spec("moved", space={**spec("x")["space"], "z": {"choice": ["a", "b"]}})
    write_spec(tmp_path, changed)

    warning = (
        f"warning: spec.yaml no longer matches its run in {rundir} (space changed); showing "
        "the run as it ran (spec.resolved.yaml)"
    )
    assert main(["results", "spec.yaml"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(warning + "; the results files are left as they are. ")
    assert "--fresh" in err and "--warm-start" in err
    assert "top 4 of 4 trials" in out and " z " not in out  # the run as it ran: no z column
    assert "run directory (unchanged)" in out
    assert main(["results", "spec.yaml", "--format", "csv", "--trials-csv", "out/t.csv"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines()[0] == (
        "trial_id,state,loss,params.x,params.y,iterations,duration_s,started_at,ended_at"
    )
    assert (tmp_path / "out" / "t.csv").read_text() == out  # an export is asked for: written
    assert main(["status", "spec.yaml", "--format", "json"]) == 0
    out, err = capsys.readouterr()
    assert err.startswith(warning)
    assert json.loads(out)["spec_changed"] == ["space"]
    assert json.loads(out)["trials"]["COMPLETE"] == 4
    assert _files(rundir) == before
    refused = run_cli(tmp_path)
    assert refused.returncode == 1 and "the spec changed" in refused.stderr
    assert _files(rundir) == before
