"""Check and repair Optuna journal files (``JournalFileBackend`` JSON-lines logs).

Optuna 5.0.0 bricks a journal study for good once its log holds a torn record (a process
killed mid-append, a full disk) followed by any later append: every later ``load_study``
raises ``JSONDecodeError``. :func:`open_journal_storage` repairs the log before handing
it to Optuna, so a crashed worker costs at most the record it was writing.

A journal is *intact* when every line is a complete JSON record terminated by ``\\n``.
A repair sets aside only what is damaged and keeps every intact record, those after the
damage too: finished trials recorded after a garbage line are not lost and run again. A
record glued onto a torn one is salvaged, and since Optuna numbers trials by their creating
records, a trial whose creating record was lost is stood in for by an empty trial, so that
the records after it still name the trials they named. The damaged file is first copied to
``<path>.corrupt-<UTC timestamp>``. Scanning streams the file line by line, so memory is
bounded by the longest record and a few numbers a record, not by the size of the journal.

The repair runs under the journal's write lock (an exclusive ``flock`` on the journal
file, which every sweepspec writer takes for each append; see :func:`_backend_class`), so it
never cuts a record that a live writer on the same file is still appending.
"""

from __future__ import annotations

import atexit
import contextlib
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

from sweepspec.errors import DISK_FULL_ERRNOS, DISK_FULL_HINT, Problem, SweepspecError
from sweepspec.run.crash import crash_point

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
CREATE_TRIAL = 4  # optuna.storages.journal._storage.JournalOperation.CREATE_TRIAL
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
    """What a repair of a damaged journal sets aside (or would).

    ``backup`` is the copy of the damaged file (None when only checked); ``dropped_records``
    counts the damaged lines, ``dropped_bytes`` their bytes that could not be read as records;
    ``kept_records`` counts every intact record, those after the damage included (a record glued
    onto a torn one is salvaged); ``placeholders`` counts the trials whose creating record was
    lost and that later records name: an empty trial stands in for each, so that the trial
    numbers of the records after the damage still mean what they meant.
    """

    path: Path
    backup: Path | None
    dropped_bytes: int
    dropped_records: int
    kept_records: int
    placeholders: int = 0


@dataclass
class _Scan:
    cut: int  # byte offset of the first damaged line: everything before it stays as it is
    size: int
    kept: int
    dropped: int
    dropped_bytes: int
    #: ``damage[i]``: kept records before the i-th damaged line (where placeholders go)
    damage: list[int]
    #: (op_code, trial_id or -1, study_id or -1) of every kept record, in order
    ops: list[tuple[int, int, int]]
    #: kept record index -> how many placeholder creates go right before it
    inserts: dict[int, int]


def _record(line: bytes) -> dict[str, Any] | None:
    """The record a journal line holds, or None."""
    if not line.endswith(b"\n"):
        return None
    try:
        item = json.loads(line)
    except (ValueError, RecursionError):  # JSONDecodeError, UnicodeDecodeError
        return None
    return item if isinstance(item, dict) and isinstance(item.get("op_code"), int) else None


def _salvage(line: bytes) -> tuple[int, dict[str, Any] | None]:
    """In a damaged line, where a complete record starts (one glued onto a torn one: a writer
    appended after a kill tore the record before it), and that record."""
    at = line.find(b'{"op_code"', 1)
    while at > 0:
        item = _record(line[at:])
        if item is not None:
            return at, item
        at = line.find(b'{"op_code"', at + 1)
    return len(line), None


def _op(item: dict[str, Any]) -> tuple[int, int, int]:
    trial, study = item.get("trial_id"), item.get("study_id")
    return (
        int(item["op_code"]),
        trial if isinstance(trial, int) else -1,
        study if isinstance(study, int) else -1,
    )


def _scan(path: Path) -> _Scan | None:
    """Stream the journal; None when it is missing or intact."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    scan: _Scan | None = None
    ops: list[tuple[int, int, int]] = []
    with f:
        offset = 0
        for line in f:
            item = _record(line)
            if item is None:
                if scan is None:
                    scan = _Scan(offset, 0, 0, 0, 0, [], ops, {})
                scan.dropped += 1
                scan.damage.append(len(ops))
                at, item = _salvage(line)
                scan.dropped_bytes += at
            if item is not None:
                ops.append(_op(item))
            offset += len(line)
        if scan is None:
            return None
        scan.size = offset
    scan.kept = len(ops)
    scan.inserts = _placeholders(ops, scan.damage)
    return scan


def _placeholders(ops: list[tuple[int, int, int]], damage: list[int]) -> dict[int, int]:
    """Where trials whose creating record was lost must be stood in for: a record that names a
    trial not created yet (Optuna numbers trials by their creating records, in order) gets the
    missing creates right where the last damage before it was."""
    inserts: dict[int, int] = {}
    created = 0
    for index, (op, trial, _study) in enumerate(ops):
        created += inserts.get(index, 0)
        if op == CREATE_TRIAL:
            created += 1
        elif trial >= created:
            before = [d for d in damage if d <= index]
            if not before:
                continue  # nothing was lost here: Optuna ignores a record of no trial
            need = trial - created + 1
            inserts[before[-1]] = inserts.get(before[-1], 0) + need
            created += need
    return inserts


def _io_error(path: Path, action: str, err: OSError) -> SweepspecError:
    reason = _ERRNO_REASONS.get(err.errno or 0) or err.strerror or str(err)
    where = f" ({err.filename})" if err.filename and str(err.filename) != str(path) else ""
    message = f"cannot {action} the journal {path}: {reason}{where}"
    if err.errno in DISK_FULL_ERRNOS:
        return SweepspecError(Problem(f"{message}; {DISK_FULL_HINT}", code="disk-full"))
    return SweepspecError(Problem(message, code="journal-io"))


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
        dropped_bytes=scan.dropped_bytes,
        dropped_records=scan.dropped,
        kept_records=scan.kept,
        placeholders=sum(scan.inserts.values()),
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

    The damaged file is first copied to ``<path>.corrupt-<UTC timestamp>``. Then every damaged
    line is taken out and every intact record kept, those after the damage too (a record glued
    onto a torn one is salvaged; a trial whose creating record was lost is stood in for by an
    empty one, see :class:`JournalRepair`): the bytes before the first damage stay as they are,
    the rest is rewritten, and the file is fsynced. Never raises for a damaged file; raises
    :class:`SweepspecError` naming the path when it cannot be read or written (permissions,
    read-only or full file system, a directory in its place).
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
        tail = path.with_name(f".{path.name}.repair-{os.getpid()}")
        try:
            with path.open("rb") as src, tail.open("wb") as dst:
                src.seek(scan.cut)
                _write_repaired_tail(src, dst, scan)
                dst.flush()
                os.fsync(dst.fileno())
            with path.open("r+b") as f, tail.open("rb") as rest:
                f.seek(scan.cut)
                f.truncate(scan.cut)
                shutil.copyfileobj(rest, f, 1 << 20)
                f.flush()
                os.fsync(f.fileno())
        finally:
            tail.unlink(missing_ok=True)
        _fsync_dir(path.parent)
    return _describe(path, scan, backup=backup)


def _write_repaired_tail(src: Any, dst: Any, scan: _Scan) -> None:
    """From the first damage on: the intact records (salvaged ones too), placeholders where
    a lost create must be stood in for."""
    index = scan.damage[0]
    study = next((o[2] for o in reversed(scan.ops[:index]) if o[2] >= 0), 0)
    for raw in src:
        item = _record(raw)
        line = raw
        if item is None:
            _, item = _salvage(raw)
            if item is None:
                continue
            line = json.dumps(item, separators=(",", ":")).encode("utf-8") + b"\n"
        for _ in range(scan.inserts.get(index, 0)):
            dst.write(_placeholder(study))
        if isinstance(item.get("study_id"), int):
            study = item["study_id"]
        dst.write(line)
        index += 1
    for _ in range(scan.inserts.get(index, 0)):
        dst.write(_placeholder(study))


def _placeholder(study_id: int) -> bytes:
    """A trial's creating record, standing in for one that was lost (its later records, if
    any, fill it in; a trial left running is re-queued by the next run's recovery)."""
    record = {
        "op_code": CREATE_TRIAL,
        "worker_id": "sweepspec-repair",
        "study_id": study_id,
        "datetime_start": datetime.now(UTC).isoformat(timespec="microseconds"),
        "user_attrs": {"sweepspec:lost_record": True},
    }
    return json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n"


def open_journal_storage(path: Path) -> optuna.storages.JournalStorage:
    """Repair the journal at ``path`` if needed (logged at WARNING), then open it as an
    Optuna ``JournalStorage`` whose writers lock with ``flock`` (see :func:`_backend_class`)."""
    from optuna.storages import JournalStorage

    path = Path(path)
    repair = repair_journal(path)
    if repair is not None:
        logger.warning(
            "repaired the damaged journal %s: set aside %d damaged line(s) (%d bytes), kept "
            "all %d intact record(s), stood in for %d lost trial(s); the damaged file is "
            "saved as %s",
            path,
            repair.dropped_records,
            repair.dropped_bytes,
            repair.kept_records,
            repair.placeholders,
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
            try:  # no O_CREAT: a journal deleted under a run is an error, not a new journal
                fd = os.open(self._file_path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            except FileNotFoundError:
                raise _gone(self._file_path) from None
            except OSError as err:
                raise _io_error(Path(self._file_path), "append to", err) from None
            end = -1
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                end = os.fstat(fd).st_size
                crash_point("before_record_append", fd, len(data))
                view = memoryview(data)
                while view:  # a regular file takes it in one write; loop for safety
                    view = view[os.write(fd, view) :]
            except OSError as err:  # a full disk, a file system gone read-only
                if end >= 0:  # a torn record would glue onto the next one: cut it off
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, end)
                raise _io_error(Path(self._file_path), "append to", err) from None
            finally:
                os.close(fd)  # releases the lock
            crash_point("after_record_append")
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
            return _checked(self._file_path, super().read_logs(log_number_from))

    return TellDurableBackend


def _gone(path: str) -> SweepspecError:
    return SweepspecError(
        Problem(
            f"the journal {path} is gone: something deleted it (or the run directory) while "
            "the sweep ran; run the sweep again to start it over",
            code="journal-gone",
        )
    )


def _checked(path: str, logs: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Optuna's reading of the journal, whose failures are reported as what they are: a
    journal damaged while the sweep ran (something wrote into it) or deleted."""
    try:
        yield from logs
    except FileNotFoundError:
        raise _gone(path) from None
    except (ValueError, UnicodeDecodeError) as err:  # JSONDecodeError, "Invalid log format."
        raise SweepspecError(
            Problem(
                f"the journal {path} was damaged while the sweep ran ({err}; did something "
                "write into it?); run the sweep again: the damage is repaired, every intact "
                "record is kept and the sweep resumes",
                code="journal-damaged",
            )
        ) from None


def trials_from(storage: Any, study_id: int, start: int) -> list[Any]:
    """The study's trials numbered ``start`` and on (frozen, not copied), read up to date:
    from a ``JournalStorage``, without building the list of every trial as ``get_all_trials``
    does (its cost grows with the run; a driver asks many times a trial). Reads Optuna 5.0's
    replay state under its lock; any other storage: ``get_all_trials()[start:]``."""
    replay = getattr(storage, "_replay_result", None)
    ids = getattr(replay, "_study_id_to_trial_ids", None)
    lock = getattr(storage, "_thread_lock", None)
    sync = getattr(storage, "_sync_with_backend", None)
    if replay is None or not isinstance(ids, dict) or lock is None or sync is None:
        return list(storage.get_all_trials(study_id, deepcopy=False))[start:]
    with lock:
        sync()
        return [replay._trials[i] for i in ids.get(study_id, [])[start:]]


def synced_journal_version(storage: Any) -> int | None:
    """:func:`journal_version` after reading what other processes appended (a
    ``JournalStorage``; else None)."""
    lock = getattr(storage, "_thread_lock", None)
    sync = getattr(storage, "_sync_with_backend", None)
    if lock is None or sync is None or getattr(storage, "_replay_result", None) is None:
        return None
    with lock:
        sync()
    return journal_version(storage)


def journal_version(storage: Any) -> int | None:
    """How many journal records ``storage`` has applied so far, when it is a
    ``JournalStorage`` (else None): the same number means the same study, so whatever was
    computed from its trials can be reused. Valid right after a read (``get_trials``)."""
    replay = getattr(storage, "_replay_result", None)
    version = getattr(replay, "log_number_read", None)
    return version if isinstance(version, int) else None
