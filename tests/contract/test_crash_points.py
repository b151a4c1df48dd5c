"""A crash at any moment loses at most the trials in flight: the driver killed (SIGKILL, by
``sweepspec.run.crash``) right after asking the searcher, right after appending a record, between
a trial's reports, or halfway through writing a results file, then resumed: exactly
``num_samples`` trials finish, each once, and what had finished is kept. A trial process killed
halfway through writing a checkpoint is retried from the checkpoint before it."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tests.conftest import ensure_local_ray
from tests.contract.conftest import Sweep

NUM_SAMPLES = 5

# (point, the hit that kills): late enough that some trials have finished by then
DRIVER_POINTS = [
    ("after_ask", 4),
    ("after_record_append", 9),
    ("after_report", 7),
    ("mid_results_write", 2),
]


@pytest.mark.parametrize(("point", "hit"), DRIVER_POINTS, ids=[p for p, _ in DRIVER_POINTS])
def test_a_driver_killed_at_any_point_loses_no_finished_trial(
    sweep: Sweep, point: str, hit: int
) -> None:
    kill_and_resume(sweep, point, hit)


@pytest.mark.ray
def test_a_driver_killed_mid_copy_of_rays_experiment_state_loses_no_finished_trial(
    tmp_path: Path,
) -> None:
    """Ray copies its experiment state into ``tune/`` in a thread of the driver; a kill in
    the middle of that copy once left a torn file, and Ray, resuming, ran every trial again."""
    ensure_local_ray()
    sweep = Sweep(tmp_path, "ray")
    kill_and_resume(sweep, "mid_state_write", 3)
    assert not list(sweep.run_dir.glob("tune/.*.tmp"))  # the torn copy's leftover is gone


def kill_and_resume(sweep: Sweep, point: str, hit: int) -> None:
    """Kill the driver at the ``hit``-th pass of ``point``, resume, and check exactly-once."""
    sweep.write(
        "crash",
        objective={"config": {"steps": 3, "seconds": 0.05}},
        trials={"num_samples": NUM_SAMPLES},
    )
    proc = sweep.popen(SWEEPSPEC_CRASH_AT=f"{point}:{hit}")
    code = proc.wait(timeout=240)
    stderr = (sweep.dir / "stderr.txt").read_text()
    assert code == -9, f"the run was not killed at {point}:{hit} (exit {code})\n{stderr}"
    sweep.kill(proc)  # what the driver left (a Ray it started is cleaned by the next run)
    before = {r["trial_id"]: r for r in _rows(sweep) if r["state"] == "COMPLETE"}
    ended_before = {e["trial"] for e in sweep.log() if e["event"] == "end"}

    sweep.run().ok()
    rows = sweep.rows()
    assert len(rows) == NUM_SAMPLES and {r["state"] for r in rows} == {"COMPLETE"}
    assert sorted(int(r["trial_id"]) for r in rows) == list(range(NUM_SAMPLES))
    by_id = {r["trial_id"]: r for r in rows}
    for tid, row in before.items():  # kept as it was
        assert (by_id[tid]["loss"], by_id[tid]["params.x"]) == (row["loss"], row["params.x"])
    assert max(Counter((r["params.x"], r["params.y"]) for r in rows).values()) == 1
    ends = [e for e in sweep.log() if e["event"] == "end"]
    assert len(ends) >= NUM_SAMPLES
    # a trial that had run to its end before the kill never ran again to its end
    assert all(Counter(e["trial"] for e in ends)[t] == 1 for t in ended_before) or not before
    assert not list(sweep.run_dir.glob(".*.tmp")) or point == "mid_results_write"
    sweep.run().ok()  # finished: a re-run runs nothing
    assert len(sweep.rows()) == NUM_SAMPLES


def test_a_trial_killed_mid_checkpoint_write_resumes_from_the_one_before(sweep: Sweep) -> None:
    once = sweep.dir / "crashed"
    sweep.write(
        "ckpt",
        function="curve",
        space={"lr": {"loguniform": [1e-4, 1e-1]}},
        objective={
            "config": {
                "epochs": 5,
                # long enough that no checkpoint is skipped as too costly (a save is due once
                # 20x its cost has passed), even on a loaded machine
                "step_seconds": 0.1,
                "crash_at": "mid_checkpoint_write:3",
                "crash_once": str(once),
            }
        },
        trials={"num_samples": 2, "max_retries": 1},
        resources={"max_concurrent": 1},
    )
    sweep.run().ok()
    assert once.exists()  # the crash happened
    rows = sweep.rows()
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE"]
    starts = sweep.log("starts")
    assert len(starts) == 3  # the killed attempt, its retry, the other trial
    retry = [s for s in starts if s["from_step"] > 0]
    assert len(retry) == 1
    # the write of checkpoint 3 was torn: the retry goes on from an intact one, never from it
    assert 1 <= retry[0]["from_step"] <= 2


def _rows(sweep: Sweep) -> list[dict[str, str]]:
    return sweep.rows() if (sweep.run_dir / "trials.csv").exists() else []
