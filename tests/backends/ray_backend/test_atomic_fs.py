"""What Ray writes into ``tune/`` is written whole or not at all (a killed driver or a full
disk never leaves a torn experiment state, which Ray would answer by starting over)."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from sweepspec.backends.ray_backend.atomic_fs import atomic_local_fs


def test_copy_files_through_it_and_it_pickles(tmp_path: Path) -> None:
    src = tmp_path / "staging"
    (src / "sub").mkdir(parents=True)
    (src / "experiment_state-1.json").write_text('{"trial_data": []}')
    (src / "sub" / "big.bin").write_bytes(os.urandom(3 << 20))
    fs = pickle.loads(pickle.dumps(atomic_local_fs()))  # as Ray's workers receive it
    pafs.copy_files(str(src), str(tmp_path / "tune"), destination_filesystem=fs)
    for path in src.rglob("*"):
        if path.is_file():
            assert (tmp_path / "tune" / path.relative_to(src)).read_bytes() == path.read_bytes()
    assert not [p for p in (tmp_path / "tune").rglob("*") if p.name.endswith(".tmp")]


KILLED_MID_WRITE = """
import os, signal, sys
from sweepspec.backends.ray_backend.atomic_fs import atomic_local_fs
out = atomic_local_fs().open_output_stream(sys.argv[1])
out.write(b'{"trial_data": [')
out.flush()
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_process_killed_mid_write_leaves_the_last_whole_file(tmp_path: Path) -> None:
    path = tmp_path / "experiment_state-1.json"
    path.write_text('{"trial_data": [], "runner_data": {}}')
    proc = subprocess.run(
        [sys.executable, "-c", KILLED_MID_WRITE, str(path)], capture_output=True, check=False
    )
    assert proc.returncode == -9, proc.stderr
    assert path.read_text() == '{"trial_data": [], "runner_data": {}}'


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    from sweepspec.backends.ray_backend.atomic_fs import _WholeFile

    path = tmp_path / "tuner.pkl"
    path.write_bytes(b"old")
    whole = _WholeFile(str(path))
    whole.fh.close()
    whole.fh = open("/dev/full", "wb")  # noqa: SIM115  # every write: ENOSPC, a full disk
    with pytest.raises(OSError, match="No space left"):
        whole.write(b"new" * 10_000)
        whole.flush()
    whole.close()
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tuner.pkl"]
    with atomic_local_fs().open_output_stream(str(path)) as ok:
        ok.write(b"new")
    assert path.read_bytes() == b"new"
