"""The trial process's checkpoint files."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
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


# -- a reused trial process (ChildTask.reuse) ----------------------------------------------

_COUNT = [0]


def _counting(config: dict[str, object], trial: object) -> dict[str, object]:
    """Counts the trials this process ran; ``leave`` = thread | child | memory leaves that
    behind (or raises MemoryError)."""
    import os
    import subprocess
    import threading
    import time

    _COUNT[0] += 1
    leave = config.get("leave")
    if leave == "thread":
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    elif leave == "child":
        subprocess.Popen(["sleep", "30"])
    elif leave == "memory":
        raise MemoryError
    elif leave == "raise":
        raise ValueError("boom")
    return {"pid": os.getpid(), "count": _COUNT[0]}


def _task(tmp_path: Path, i: int, **config: object) -> object:
    from sweepspec.run.child import ChildTask

    return ChildTask(
        func=_counting,
        config=dict(config),
        trial_id=str(i),
        trial_dir=tmp_path / str(i),
        attempt=0,
        cuda_devices=None,
        memory_bytes=None,
        answers=False,
        reuse=True,
    )


def _start(tmp_path: Path, **config: object) -> tuple[object, object]:
    import multiprocessing

    from sweepspec.run.child import child_main

    mp = multiprocessing.get_context("fork")
    parent, child = mp.Pipe()
    process = mp.Process(target=child_main, args=(child, _task(tmp_path, 0, **config)))
    process.start()
    child.close()
    return process, parent


def test_a_reused_process_runs_trials_one_after_another(tmp_path: Path) -> None:
    from sweepspec.run.child import next_task

    process, conn = _start(tmp_path)
    ends = []
    for i in range(1, 4):
        ends.append(conn.recv())  # type: ignore[attr-defined]
        assert conn.recv() == ("ready",)  # type: ignore[attr-defined]
        next_task(conn, _task(tmp_path, i, leave="raise" if i == 2 else None))  # type: ignore[arg-type]
    ends.append(conn.recv())  # type: ignore[attr-defined]
    conn.send("exit")  # type: ignore[attr-defined]
    process.join(5)  # type: ignore[attr-defined]
    assert process.exitcode == 0  # type: ignore[attr-defined]
    assert [e[0] for e in ends] == ["done", "done", "error", "done"]
    assert ends[2][1:3] == ("ValueError", "ValueError: boom")  # a raise does not end the process
    done = [e[1] for e in ends if e[0] == "done"]
    assert len({d["pid"] for d in done}) == 1 and [d["count"] for d in done] == [1, 2, 4]
    # each trial logs to its own directory
    for i in range(4):
        assert "--- attempt 0" in (tmp_path / str(i) / "log.txt").read_text()


@pytest.mark.parametrize("leave", ["thread", "child", "memory"])
def test_a_process_that_a_trial_left_dirty_is_not_reused(tmp_path: Path, leave: str) -> None:
    process, conn = _start(tmp_path, leave=leave)
    end = conn.recv()  # type: ignore[attr-defined]
    assert end[0] == ("error" if leave == "memory" else "done")
    with pytest.raises(EOFError):  # no ("ready",): the process exits instead
        conn.recv()  # type: ignore[attr-defined]
    process.join(5)  # type: ignore[attr-defined]
    assert process.exitcode == 0  # type: ignore[attr-defined]
    with contextlib.suppress(ProcessLookupError):  # what the trial left (as the runner does)
        os.killpg(process.pid, signal.SIGKILL)  # type: ignore[attr-defined]


def test_a_process_near_its_memory_limit_is_not_reused(tmp_path: Path) -> None:
    from sweepspec.run.child import _room_left

    roomy = _task(tmp_path, 0)
    assert _room_left(roomy)  # type: ignore[arg-type]  # no limit
    tight = dataclasses.replace(roomy, memory_bytes=64 * 2**20)  # type: ignore[type-var]
    assert not _room_left(tight)  # this interpreter's address space is far above 32 MiB
    loose = dataclasses.replace(roomy, memory_bytes=2**50)  # type: ignore[type-var]
    assert _room_left(loose)
