"""Leases and file mutexes: liveness through kernel-released flock locks."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import sys
import time
from multiprocessing.synchronize import Event
from pathlib import Path

import pytest

from sweepspec.backends.optuna_backend.lease import FileMutex, Lease, is_alive, reap_dead
from sweepspec.errors import SweepspecError

CTX = mp.get_context("spawn")
JOIN_S = 30.0


# --- child-process targets (module level, so that "spawn" can import them) ---


def _probe(directory: Path, owner_id: str) -> None:
    sys.exit(0 if is_alive(directory, owner_id) else 1)


def _hold(directory: Path, owner_id: str, ready: Event) -> None:
    Lease.acquire(directory, owner_id)
    ready.set()
    time.sleep(600)


def _count(mutex_path: Path, counter: Path, times: int) -> None:
    for _ in range(times):
        with FileMutex(mutex_path, timeout=JOIN_S):
            value = int(counter.read_text() or "0")
            counter.write_text(str(value + 1))


def _alive_from_child(directory: Path, owner_id: str) -> bool:
    proc = CTX.Process(target=_probe, args=(directory, owner_id))
    proc.start()
    proc.join(JOIN_S)
    assert proc.exitcode in (0, 1)
    return proc.exitcode == 0


# --- tests ---


def test_acquire_and_release(tmp_path: Path) -> None:
    leases = tmp_path / "leases"
    lease = Lease.acquire(leases)
    assert len(lease.owner_id) == 32
    assert lease.path == leases / f"{lease.owner_id}.lock"
    info = json.loads(lease.path.read_text())
    assert info["pid"] == os.getpid()
    assert info["host"] == socket.gethostname()
    assert "started" in info
    assert is_alive(leases, lease.owner_id)

    lease.release()
    assert not lease.path.exists()
    assert not is_alive(leases, lease.owner_id)
    lease.release()  # idempotent


def test_context_manager_and_explicit_owner(tmp_path: Path) -> None:
    with Lease.acquire(tmp_path, "worker-1") as lease:
        assert lease.owner_id == "worker-1"
        assert is_alive(tmp_path, "worker-1")
    assert not is_alive(tmp_path, "worker-1")
    assert not lease.held


def test_a_held_lease_cannot_be_taken_twice(tmp_path: Path) -> None:
    with Lease.acquire(tmp_path, "w") as lease:
        with pytest.raises(SweepspecError, match="held by another live process"):
            Lease.acquire(tmp_path, "w")
        assert is_alive(tmp_path, "w")
        assert lease.path.exists()


def test_probing_in_the_holding_process_keeps_the_lease(tmp_path: Path) -> None:
    with Lease.acquire(tmp_path) as lease:
        for _ in range(3):
            assert is_alive(tmp_path, lease.owner_id)
        assert reap_dead(tmp_path) == []
        assert _alive_from_child(tmp_path, lease.owner_id)
    assert not _alive_from_child(tmp_path, lease.owner_id)


def test_unknown_owner_and_missing_directory(tmp_path: Path) -> None:
    assert not is_alive(tmp_path, "nobody")
    assert not is_alive(tmp_path / "missing", "nobody")
    assert reap_dead(tmp_path / "missing") == []


def test_a_sigkilled_holder_is_dead_and_reaped(tmp_path: Path) -> None:
    ready = CTX.Event()
    proc = CTX.Process(target=_hold, args=(tmp_path, "victim", ready), daemon=True)
    proc.start()
    try:
        assert ready.wait(JOIN_S)
        assert is_alive(tmp_path, "victim")
        assert reap_dead(tmp_path) == []
        assert (tmp_path / "victim.lock").exists()
    finally:
        assert proc.pid is not None
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(JOIN_S)
    assert proc.exitcode == -signal.SIGKILL
    assert (tmp_path / "victim.lock").exists()  # the file outlives its owner ...
    assert not is_alive(tmp_path, "victim")  # ... but not the lock
    assert reap_dead(tmp_path) == ["victim"]
    assert not (tmp_path / "victim.lock").exists()
    assert reap_dead(tmp_path) == []


def test_reap_dead_keeps_live_leases(tmp_path: Path) -> None:
    (tmp_path / "ghost.lock").write_text("{}")
    (tmp_path / "not-a-lease.txt").write_text("")
    with Lease.acquire(tmp_path, "live"):
        assert reap_dead(tmp_path) == ["ghost"]
        assert is_alive(tmp_path, "live")
    assert (tmp_path / "not-a-lease.txt").exists()


def test_a_dead_owners_file_can_be_taken_again(tmp_path: Path) -> None:
    (tmp_path / "w.lock").write_text("stale")
    with Lease.acquire(tmp_path, "w") as lease:
        assert json.loads(lease.path.read_text())["pid"] == os.getpid()


def test_file_mutex_excludes_across_processes(tmp_path: Path) -> None:
    mutex, counter = tmp_path / "locks" / "counter.lock", tmp_path / "counter"
    counter.write_text("0")
    procs = [CTX.Process(target=_count, args=(mutex, counter, 50)) for _ in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(JOIN_S)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    assert counter.read_text() == "200"


def test_file_mutex_timeout(tmp_path: Path) -> None:
    path = tmp_path / "m.lock"
    with FileMutex(path):
        start = time.monotonic()
        with pytest.raises(SweepspecError, match="timed out") as info, FileMutex(path, 0.05):
            pass
        assert time.monotonic() - start >= 0.05
        assert str(path) in str(info.value)
    with FileMutex(path, timeout=0.05):  # free again once released
        pass
    assert path.exists()
