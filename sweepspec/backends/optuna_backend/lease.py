"""Per-process liveness and cross-process mutexes from kernel-released ``flock`` locks.

A live sweepspec process holds a :class:`Lease`: an exclusive ``flock`` on
``<dir>/<owner_id>.lock``. The kernel drops the lock when the process dies, however it dies
(``SIGKILL``, OOM killer), so :func:`is_alive` tells a live owner from a dead one without
heartbeats or timeouts; Optuna's ``JournalStorage`` has none and leaves the trials of a
killed worker RUNNING forever.

Limits:

* ``flock`` locks are **host-local**: they are not reliable on NFS or other network file
  systems, and they say nothing about processes on another machine. Sweeps spread over
  several machines must use a PostgreSQL storage, not a journal file plus leases.
* A ``flock`` belongs to the open file description, which ``fork`` shares: a forked child
  that outlives its parent (without ``exec``) keeps the parent's lease alive. The lock fds
  are close-on-exec, so ``exec``'d subprocesses do not inherit them.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from sweepspec.errors import Problem, SweepspecError

__all__ = ["FileMutex", "Lease", "is_alive", "reap_dead"]

LEASE_SUFFIX = ".lock"
_POLL_S = 0.01


def _lease_path(directory: Path, owner_id: str) -> Path:
    return Path(directory) / f"{owner_id}{LEASE_SUFFIX}"


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open on ``fd`` (a reaper may have unlinked it)."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    fst = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (fst.st_dev, fst.st_ino)


def _try_lock(fd: int, op: int) -> bool:
    try:
        fcntl.flock(fd, op | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _take(path: Path) -> int:
    """Open, lock and stamp the lease file ``path``; the locked fd."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        if not _try_lock(fd, fcntl.LOCK_EX):
            os.close(fd)
            raise SweepspecError(
                Problem(f"the lease {path} is held by another live process", code="lease")
            )
        if _same_file(fd, path):
            break
        os.close(fd)  # reaped between our open and our lock: start again
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "started": _now()}
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps(info).encode() + b"\n")
    except BaseException:
        os.close(fd)
        raise
    return fd


class Lease:
    """Held by a live sweepspec process: an exclusive ``flock`` on ``<dir>/<owner_id>.lock``.

    The kernel releases it when the process dies (even on ``SIGKILL``). The file holds
    ``{"pid", "host", "started"}`` as JSON, for humans and error messages.
    """

    def __init__(self, owner_id: str, path: Path, fd: int) -> None:
        self.owner_id = owner_id
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, directory: Path, owner_id: str | None = None) -> Lease:
        """Create ``directory`` if needed and take the lease ``owner_id`` (a new uuid4 hex
        by default). Raises :class:`SweepspecError` if a live process already holds it."""
        owner_id = owner_id or uuid.uuid4().hex
        path = _lease_path(directory, owner_id)
        try:
            return cls(owner_id, path, _take(path))
        except OSError as err:
            msg = f"cannot create the lease {path}: {err.strerror or err}"
            raise SweepspecError(Problem(msg, code="lease")) from err

    @property
    def held(self) -> bool:
        """Whether this object still holds the lease (not yet released)."""
        return self._fd is not None

    def release(self) -> None:
        """Delete the lease file, then unlock and close it. Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            if _same_file(fd, self.path):
                self.path.unlink(missing_ok=True)
        finally:
            os.close(fd)  # closing the only fd on the description drops the flock

    def __enter__(self) -> Lease:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease({self.owner_id!r}, path={str(self.path)!r}, held={self.held})"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def is_alive(directory: Path, owner_id: str) -> bool:
    """True iff some process holds the lease ``owner_id`` in ``directory``.

    Works from any process on the same host, including the holder itself: ``flock`` locks
    belong to open file descriptions, so a fresh ``open`` conflicts with the holder's lock,
    and closing it never releases the holder's. A *shared* probe lock is used so that
    concurrent probes of a dead owner do not see each other as the owner.
    """
    try:
        fd = os.open(_lease_path(directory, owner_id), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        return not _try_lock(fd, fcntl.LOCK_SH)
    finally:
        os.close(fd)  # also drops our probe lock, if we got it


def reap_dead(directory: Path) -> list[str]:
    """Owner ids whose lease files exist but are not held (dead owners); deletes those
    files. A missing directory has none."""
    try:
        paths = sorted(Path(directory).glob(f"*{LEASE_SUFFIX}"))
    except FileNotFoundError:
        return []
    dead: list[str] = []
    for path in paths:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue  # released meanwhile
        try:
            if _try_lock(fd, fcntl.LOCK_EX) and _same_file(fd, path):
                path.unlink()  # while locked: a racing acquire notices and starts again
                dead.append(path.name.removesuffix(LEASE_SUFFIX))
        finally:
            os.close(fd)
    return dead


class FileMutex:
    """A blocking cross-process critical section: ``flock(LOCK_EX)`` on ``path``.

    The file (and its directory) is created if missing and never deleted. ``timeout``
    (seconds, None = wait forever) bounds the wait; on expiry :class:`SweepspecError`
    names the path. Not re-entrant: a second ``acquire`` from the same process, even
    through another ``FileMutex`` object, waits for the first ``release``.
    """

    def __init__(self, path: Path, timeout: float | None = None) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self._fd: int | None = None

    def acquire(self) -> None:
        if self._fd is not None:
            raise RuntimeError(f"FileMutex {self.path} is already held by this object")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            self._wait(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd

    def _wait(self, fd: int) -> None:
        if self.timeout is None:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return
        deadline = time.monotonic() + self.timeout
        while not _try_lock(fd, fcntl.LOCK_EX):
            if time.monotonic() >= deadline:
                raise SweepspecError(
                    Problem(
                        f"timed out after {self.timeout:g} s waiting for the lock {self.path}"
                        " (another sweepspec process holds it)",
                        code="lock-timeout",
                    )
                )
            time.sleep(_POLL_S)

    def release(self) -> None:
        """Unlock and close. Idempotent."""
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        os.close(fd)

    def __enter__(self) -> FileMutex:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
