"""A full disk stops the run with a clear message and loses nothing: the disk of the run
directory (a small tmpfs the test mounts) fills up right before a record is appended (the Optuna
journal, the Ray ledger), in the middle of a checkpoint (the trial process) and in the middle of a
results file (the driver). Once there is room again, the same command resumes: exactly
``num_samples`` trials finish, each once, and what had finished is kept."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.contract.conftest import Sweep

NUM_SAMPLES = 5


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 32 MiB tmpfs of this test's own (a full disk for real: the kernel says ENOSPC)."""
    if os.geteuid() != 0:
        unavailable("the disk-full tests mount a tmpfs: they run as root (as CI does)")
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", str(where)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        unavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True, check=False)


CASES = [
    # (point, hit, where the record is written); in the trial process: armed by the objective
    pytest.param("before_record_append", 3, "driver", "journal|ledger", id="record-append"),
    pytest.param(
        "mid_checkpoint_write", 2, "trial", r"trial \d+: disk_full: ", id="checkpoint"
    ),  # (of two trials running, either can be the first to write after the fill)
    pytest.param("mid_results_write", 2, "driver", "trials.csv|summary.json", id="results"),
]


@pytest.mark.parametrize(("point", "hit", "process", "named"), CASES)
def test_a_full_disk_stops_the_run_cleanly_and_it_resumes_once_there_is_room(
    sweep: Sweep, disk: Path, point: str, hit: int, process: str, named: str
) -> None:
    filler = disk / "filler"
    once = sweep.dir / "filled"
    arm = {"SWEEPSPEC_FILL_AT": f"{point}:{hit}", "SWEEPSPEC_FILL_FILE": str(filler)}
    arm["SWEEPSPEC_CRASH_ONCE"] = str(once)
    # files that outgrow a block (4 KiB) as they are written: the fill bites at that write
    config: dict[str, object] = {"steps": 3, "seconds": 0.05, "checkpoint_pad": 20_000}
    concurrency = 2
    if process == "trial":
        config["environ"] = arm
    if process == "driver":  # no trial process writing when the driver meets the full disk
        config, concurrency = {"steps": 0}, 1
    sweep.write(
        "full",
        space={
            "x": {"uniform": [-1.0, 1.0]},
            "y": {"uniform": [-1.0, 1.0]},
            "tag": {"choice": ["t" * 3000]},  # a long column in trials.csv
        },
        objective={"config": config},
        trials={"num_samples": NUM_SAMPLES},
        resources={"max_concurrent": concurrency},
        storage=str(disk / "runs"),
    )
    proc = sweep.popen(**(arm if process == "driver" else {}))
    code = proc.wait(timeout=240)
    sweep.kill(proc)
    err = (sweep.dir / "stderr.txt").read_text()
    assert once.exists(), f"the disk was never filled at {point}\n{err}"
    assert code != 0, err
    assert "the disk is full" in err and "run the same command again" in err, err
    assert "Traceback" not in err, err
    assert re.search(named, err), err  # the write that met the full disk is the one named
    before = {r["trial_id"]: r for r in _rows(sweep) if r["state"] == "COMPLETE"}
    assert all(r["state"] != "FAILED" for r in _rows(sweep))  # a full disk fails no trial

    filler.unlink()  # room again
    sweep.run().ok()
    rows = sweep.rows()
    assert len(rows) == NUM_SAMPLES and {r["state"] for r in rows} == {"COMPLETE"}
    assert sorted(int(r["trial_id"]) for r in rows) == list(range(NUM_SAMPLES))
    by_id = {r["trial_id"]: r for r in rows}
    for tid, row in before.items():
        assert (by_id[tid]["loss"], by_id[tid]["params.x"]) == (row["loss"], row["params.x"])
    assert max(_count((r["params.x"], r["params.y"]) for r in rows).values()) == 1


def _rows(sweep: Sweep) -> list[dict[str, str]]:
    with contextlib.suppress(FileNotFoundError):
        return sweep.rows()
    return []


def _count(items: Iterator[tuple[str, str]]) -> dict[tuple[str, str], int]:
    out: dict[tuple[str, str], int] = {}
    for item in items:
        out[item] = out.get(item, 0) + 1
    return out
