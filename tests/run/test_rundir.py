"""The run directory's files: a results file is written whole or not at all, and what a killed
writer left behind is cleaned up by the next session, never what a live one is writing."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from sweepspec.run.rundir import STALE_TMP_S, RunDir, atomic_write


def _dead_pid() -> int:
    proc = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(proc.stdout)


def test_atomic_write_replaces_the_file_whole(tmp_path: Path) -> None:
    path = tmp_path / "trials.csv"
    atomic_write(path, "old\n")
    atomic_write(path, "new\n" * 1000)
    assert path.read_text() == "new\n" * 1000
    assert [p.name for p in tmp_path.iterdir()] == ["trials.csv"]


def test_stale_temporaries_of_a_dead_writer_go_and_a_live_ones_stay(tmp_path: Path) -> None:
    rundir = RunDir(tmp_path)
    old = time.time() - STALE_TMP_S - 5
    dead = tmp_path / f".trials.csv.{_dead_pid()}.tmp"
    live = tmp_path / f".summary.json.{os.getpid()}.tmp"
    fresh = tmp_path / f".best.yaml.{_dead_pid()}.tmp"  # just written: maybe another host's
    for p in (dead, live, fresh):
        p.write_text("half")
    for p in (dead, live):
        os.utime(p, (old, old))
    assert rundir.remove_stale_temporaries() == [dead]
    assert not dead.exists() and live.exists() and fresh.exists()
