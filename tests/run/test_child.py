"""The trial process's checkpoint files."""

from __future__ import annotations

from pathlib import Path

import pytest

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


class _Conn:
    def __init__(self) -> None:
        self.sent: list[tuple[object, ...]] = []

    def send(self, message: tuple[object, ...]) -> None:
        self.sent.append(message)


def _trial(tmp_path: Path, ratio: float) -> tuple[object, _Conn]:
    from sweepspec.run.child import ChildTask, _Trial

    task = ChildTask(
        func=lambda c, t: None,
        config={},
        trial_id="0",
        trial_dir=tmp_path,
        attempt=0,
        cuda_devices=None,
        memory_bytes=None,
        answers=False,
        checkpoint_ratio=ratio,
    )
    conn = _Conn()
    return _Trial(conn, task), conn  # type: ignore[arg-type]


def test_every_checkpoint_is_saved_by_default(tmp_path: Path) -> None:
    trial, conn = _trial(tmp_path, 0.0)
    for epoch in range(5):
        trial.report({"loss": 1.0 / (epoch + 1)}, checkpoint={"epoch": epoch})  # type: ignore[attr-defined]
    assert [m[2] for m in conn.sent] == [True] * 5
    assert trial.checkpoint.load() == {"epoch": 4}  # type: ignore[attr-defined]


def test_checkpoints_are_thinned_when_saving_costs_more_than_its_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sweepspec.run.child as child

    clock = [100.0]
    monkeypatch.setattr(child.time, "monotonic", lambda: clock[0])
    real_save = child._save_checkpoint

    def slow_save(path: Path, state: object) -> None:
        clock[0] += 0.01  # a save costs 10 ms
        real_save(path, state)

    monkeypatch.setattr(child, "_save_checkpoint", slow_save)
    trial, conn = _trial(tmp_path, 20.0)
    for epoch in range(10):
        clock[0] += 0.05  # an epoch takes 50 ms: a save is due every 200 ms (20 x 10 ms)
        trial.report({"loss": 1.0}, checkpoint={"epoch": epoch})  # type: ignore[attr-defined]
    saved = [m[2] for m in conn.sent]
    assert saved[0] is True  # the first one always
    assert 2 <= sum(saved) <= 4  # instead of 10
    last = max(i for i, s in enumerate(saved) if s)
    assert trial.checkpoint.load() == {"epoch": last}  # type: ignore[attr-defined]
