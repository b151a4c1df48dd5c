"""Check and repair Optuna journal files (``JournalFileBackend`` JSON-lines logs).

Optuna 5.0.0 bricks a journal study for good once its log holds a torn record (a process
killed mid-append, a full disk) followed by any later append: every later ``load_study``
raises ``JSONDecodeError``. :func:`open_journal_storage` repairs the log before handing
it to Optuna, so a crashed worker costs at most the record it was writing.

A journal is *intact* when every line is a complete JSON object terminated by ``\\n``.
A repair keeps the longest intact prefix and drops everything from the first bad line on:
records after a corrupt one cannot be trusted. The damaged file is first copied to
``<path>.corrupt-<UTC timestamp>``. Scanning streams the file line by line, so memory is
bounded by the longest record, not by the size of the journal.

The repair runs under the journal's write lock (an exclusive ``flock`` on the journal
file, which every sweepspec writer takes for each append; see :func:`_backend_class`), so it
never cuts a record that a live writer on the same file is still appending.
"""

from __future__ import annotations

import atexit
import errno
import json
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sweepspec.errors import Problem, SweepspecError

if TYPE_CHECKING:
    import optuna

__all__ = [
    "JournalRepair",
    "check_journal",
    "open_journal_storage",
    "repair_journal",
]

logger = logging.getLogger(__name__)

LOCK_SUFFIX = ".lock"  # optuna.storages.journal._file.LOCK_FILE_SUFFIX
DEFAULT_LOCK_GRACE_S = 30.0  # JournalFileOpenLock's default grace period

_ERRNO_REASONS: dict[int, str] = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EISDIR: "it is a directory, not a journal file",
    errno.ENOTDIR: "a parent of the path is not a directory",
    errno.EIO: "input/output error (failing disk or network file system?)",
}


@dataclass(frozen=True)
class JournalRepair:
    """What a repair of a damaged journal drops (or dropped).

    ``backup`` is the copy of the damaged file (None when only checked); ``dropped_records``
    counts the lines from the first bad one to the end (a glued line counts once).
    """

    path: Path
    backup: Path | None
    dropped_bytes: int
    dropped_records: int
    kept_records: int


@dataclass(frozen=True)
class _Scan:
    cut: int  # byte offset where the intact prefix ends
    size: int
    kept: int
    dropped: int


def _is_record(line: bytes) -> bool:
    if not line.endswith(b"\n"):
        return False
    try:
        return isinstance(json.loads(line), dict)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        return False


def _scan(path: Path) -> _Scan | None:
    """Stream the journal; None when it is missing or intact."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    with f:
        offset = 0
        for kept, line in enumerate(f):
            if not _is_record(line):
                dropped = 1 + sum(1 for _ in f)
                return _Scan(cut=offset, size=f.tell(), kept=kept, dropped=dropped)
            offset += len(line)
    return None


def _io_error(path: Path, action: str, err: OSError) -> SweepspecError:
    reason = _ERRNO_REASONS.get(err.errno or 0) or err.strerror or str(err)
    where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
    return SweepspecError(
        Problem(f"cannot {action} the journal {path}: {reason}{where}", code="journal-io")
    )


@contextmanager
def _io_errors(path: Path, action: str) -> Iterator[None]:
    """Turn an ``OSError`` into a :class:`SweepspecError` naming the path."""
    try:
        yield
    except OSError as err:
        raise _io_error(path, action, err) from err


def check_journal(path: Path) -> JournalRepair | None:
    """Scan the journal; None if it is intact (every line is a complete JSON object
    terminated by ``\\n``) or missing. Otherwise describe what a repair would drop,
    without changing anything."""
    path = Path(path)
    with _io_errors(path, "read"):
        scan = _scan(path)
    return None if scan is None else _describe(path, scan, backup=None)


def _describe(path: Path, scan: _Scan, backup: Path | None) -> JournalRepair:
    return JournalRepair(
        path=path,
        backup=backup,
        dropped_bytes=scan.size - scan.cut,
        dropped_records=scan.dropped,
        kept_records=scan.kept,
    )


def _release_lock(lock: str) -> None:
    """Optuna's release protocol: rename (atomic, fails if someone else broke it), unlink."""
    renamed = f"{lock}{uuid.uuid4()}.rename"
    try:
        os.rename(lock, renamed)
    except FileNotFoundError:
        return  # force-released by another process after the grace period
    os.unlink(renamed)


@contextmanager
def _journal_lock(path: Path, grace_s: float) -> Iterator[None]:
    """Hold the journal's write lock: an exclusive ``flock`` on the journal file itself, as
    every sweepspec writer takes it (see :func:`_backend_class`). The kernel drops it when its
    holder dies, so there is no stale lock to break; ``grace_s`` is kept for the signature."""
    import fcntl

    del grace_s
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _backup_path(path: Path) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return path.with_name(f"{path.name}.corrupt-{stamp}")


def _write_backup(path: Path) -> Path:
    """Copy ``path`` to a new ``<path>.corrupt-<stamp>[-n]`` file, durably."""
    base = _backup_path(path)
    for n in range(1000):
        backup = base if n == 0 else base.with_name(f"{base.name}-{n}")
        try:
            dst = backup.open("xb")
        except FileExistsError:
            continue
        try:
            with dst, path.open("rb") as src:
                shutil.copyfileobj(src, dst, 1 << 20)
                dst.flush()
                os.fsync(dst.fileno())
        except BaseException:
            backup.unlink(missing_ok=True)
            raise
        return backup
    raise FileExistsError(errno.EEXIST, "too many backups", str(base))


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_journal(
    path: Path, *, lock_grace_s: float = DEFAULT_LOCK_GRACE_S
) -> JournalRepair | None:
    """Repair a damaged journal in place; None when it is intact (or missing).

    The damaged file is copied to ``<path>.corrupt-<UTC timestamp>``, then truncated to
    the end of the last line before the first bad one, and fsynced. Never raises for a
    damaged file; raises :class:`SweepspecError` naming the path when it cannot be read or
    written (permissions, read-only or full file system, a directory in its place).
    ``lock_grace_s``: how long to wait for a journal lock left by a dead writer.
    """
    path = Path(path)
    with _io_errors(path, "read"):
        if _scan(path) is None:  # fast path: no lock needed to learn it is intact
            return None
    with _io_errors(path, "repair"), _journal_lock(path, lock_grace_s):
        scan = _scan(path)  # again under the lock: a live writer may have finished
        if scan is None:
            return None
        backup = _write_backup(path)
        with path.open("r+b") as f:
            f.truncate(scan.cut)
            f.flush()
            os.fsync(f.fileno())
        _fsync_dir(path.parent)
    return _describe(path, scan, backup=backup)


def open_journal_storage(path: Path) -> optuna.storages.JournalStorage:
    """Repair the journal at ``path`` if needed (logged at WARNING), then open it as an
    Optuna ``JournalStorage`` whose writers lock with ``flock`` (see :func:`_backend_class`)."""
    from optuna.storages import JournalStorage

    path = Path(path)
    repair = repair_journal(path)
    if repair is not None:
        logger.warning(
            "repaired the damaged journal %s: dropped %d record(s) (%d bytes) after the "
            "last intact one, kept %d; the damaged file is saved as %s",
            path,
            repair.dropped_records,
            repair.dropped_bytes,
            repair.kept_records,
            repair.backup,
        )
    with _io_errors(path, "open"):
        backend = _backend_class()(str(path))
        return JournalStorage(backend)


class _Syncer:
    """fsyncs one file in a background thread, coalescing requests (group commit): the
    driver's loop does not wait for the disk (4-6 ms a trial here, more when other processes
    write) before it starts the next trial. :func:`flush_journals` (also run at exit) waits
    for every requested fsync. The thread ends after IDLE_S without requests; a forked child
    starts with no thread and no pending work."""

    IDLE_S = 2.0

    def __init__(self, path: str) -> None:
        self.path = path
        self._reset()

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._requested = self._done = 0
        self._thread: threading.Thread | None = None

    def request(self) -> None:
        with self._cond:
            self._requested += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="journal-fsync", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def _run(self) -> None:
        while True:
            with self._cond:
                if not self._cond.wait_for(lambda: self._done < self._requested, self.IDLE_S):
                    self._thread = None
                    return
                target = self._requested
            try:
                fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            except OSError:
                logger.warning("cannot fsync the journal %s", self.path, exc_info=True)
            with self._cond:
                self._done = target
                self._cond.notify_all()

    def flush(self, timeout: float | None = 60.0) -> None:
        with self._cond:
            target = self._requested
            self._cond.wait_for(lambda: self._done >= target, timeout)


_SYNCERS: dict[str, _Syncer] = {}


def _syncer_for(path: str) -> _Syncer:
    syncer = _SYNCERS.get(path)
    if syncer is None:
        syncer = _SYNCERS[path] = _Syncer(path)
    return syncer


def flush_journals() -> None:
    """Wait until every journal record that ends a trial is on disk (fsynced)."""
    for syncer in list(_SYNCERS.values()):
        syncer.flush()


def _after_fork_in_child() -> None:
    for syncer in _SYNCERS.values():
        syncer._reset()


atexit.register(flush_journals)
os.register_at_fork(after_in_child=_after_fork_in_child)


def _backend_class() -> type:
    """Optuna's file backend, made cheap per record (a trial writes about a dozen: its
    creation, each parameter, each attribute, each report, its end).

    * **Locking**: each append takes an exclusive ``flock`` on the journal file itself (on
      the fd it writes with, closed right after) instead of Optuna's lock file (creating,
      renaming and deleting ``<path>.lock`` costs about 1 ms a record here, and a writer
      killed holding it stalls every other writer for 30 s; the kernel drops a ``flock``
      when its holder dies). Every sweepspec writer and :func:`repair_journal` use it.
    * **Durability**: only the records that end a trial (and create the study) are fsynced;
      Optuna fsyncs every record (3 s of 60 trivial trials went to fsync here). Each record
      is still written with one ``write`` under the lock, so a killed process (SIGKILL)
      loses nothing it wrote: the page cache outlives it. Only a machine crash can lose
      records, and then at most those after the last finished trial: in-flight work, which
      resume re-runs. The fsync runs in a background thread (:class:`_Syncer`), so a
      record that ends a trial reaches the disk a few milliseconds after ``tell`` returns
      (and surely before the process exits normally).
    * **Reads**: Optuna re-reads the journal before every storage call (twenty times a
      trial in the driver); when the file has not grown since the last read there is
      nothing to read, which one ``stat`` tells.
    """
    import fcntl
    import json as _json

    from optuna.storages.journal import JournalFileBackend
    from optuna.storages.journal._storage import JournalOperation

    durable_ops = {
        int(JournalOperation.SET_TRIAL_STATE_VALUES),
        int(JournalOperation.CREATE_STUDY),
        int(JournalOperation.SET_STUDY_USER_ATTR),
    }

    class TellDurableBackend(JournalFileBackend):
        def append_logs(self, logs: list[dict[str, Any]]) -> None:
            data = (
                "\n".join(_json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            ).encode("utf-8")
            durable = any(log.get("op_code") in durable_ops for log in logs)
            fd = os.open(
                self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644
            )
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                view = memoryview(data)
                while view:  # a regular file takes it in one write; loop for safety
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)  # releases the lock
            if durable:
                _syncer_for(self._file_path).request()

        def read_logs(self, log_number_from: int) -> Any:
            offset = self._log_number_offset.get(log_number_from)
            if offset is not None:
                try:
                    if os.stat(self._file_path).st_size == offset:
                        return iter(())  # nothing new since the last read
                except OSError:
                    pass  # let Optuna raise its own error
            return super().read_logs(log_number_from)

    return TellDurableBackend


def journal_version(storage: Any) -> int | None:
    """How many journal records ``storage`` has applied so far, when it is a
    ``JournalStorage`` (else None): the same number means the same study, so whatever was
    computed from its trials can be reused. Valid right after a read (``get_trials``)."""
    replay = getattr(storage, "_replay_result", None)
    version = getattr(replay, "log_number_read", None)
    return version if isinstance(version, int) else None
