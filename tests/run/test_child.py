"""The trial process's checkpoint files."""

from __future__ import annotations

from pathlib import Path

from sweepspec.run.child import _save_checkpoint, _usable_checkpoint


def test_checkpoint_round_trip_and_replace(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pkl"
    assert _usable_checkpoint(path) is None
    _save_checkpoint(path, {"epoch": 1})
    _save_checkpoint(path, {"epoch": 2, "w": [1.0, 2.0]})
    ckpt = _usable_checkpoint(path)
    assert ckpt is not None and ckpt.load() == {"epoch": 2, "w": [1.0, 2.0]}
    assert not path.with_suffix(".tmp").exists()


def test_an_empty_checkpoint_left_by_an_os_crash_means_start_over(tmp_path: Path) -> None:
    path = tmp_path / "checkpoint.pkl"
    path.write_bytes(b"")
    assert _usable_checkpoint(path) is None
    assert not path.exists() and path.with_suffix(".empty").exists()  # kept for a post-mortem
