"""The process that runs one trial attempt: forked from the driver (which has already imported
the objective's module), in its own process group, killed with its parent.

It talks to the driver over a pipe: ``("report", metrics, has_checkpoint)`` is answered with
``"continue"``, ``"prune"``, ``"stop"`` or ``"pause"`` (unless ``ChildTask.answers`` is false:
nothing can stop the trial, so it does not wait). On ``"pause"`` the child saves that report's
checkpoint if it had skipped it, and says ``("saved",)``. The end is ``("done", metrics)``,
``("stopped",)`` or ``("error", kind, message, traceback)``.

A child started with ``ChildTask.reuse`` runs more than one trial: after a trial's end it
sends ``("ready",)`` and waits for the next ``("task", ChildTask)`` (any other message, or the
pipe's end, makes it exit). It exits instead when the trial left something behind that the
next one would inherit: a thread, a child process, a MemoryError, or (under a memory limit)
an address space grown past half of the limit.
"""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import multiprocessing
import os
import pickle
import resource
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from sweepspec.errors import DISK_FULL_ERRNOS
from sweepspec.records import plain_value
from sweepspec.run.crash import crash_point, new_trial
from sweepspec.run.rundir import CHECKPOINT, TRIAL_LOG
from sweepspec.trial import TrialStopped

__all__ = [
    "DISK_FULL",
    "ChildTask",
    "FileCheckpoint",
    "child_main",
    "descendants",
    "died_before_returning",
    "discard",
    "fork_child",
    "kill_group",
    "next_task",
    "reap_orphans",
]


@dataclass(frozen=True)
class ChildTask:
    """What the child needs: the function, its config, where to write, which devices."""

    func: Callable[..., Any]
    config: dict[str, Any]
    trial_id: str
    trial_dir: Path
    attempt: int
    cuda_devices: str | None
    memory_bytes: int | None
    answers: bool = True  # False: reports are never answered (nothing can stop the trial)
    #: Save a checkpoint only when the time since the last save is at least this many times
    #: what that save cost (0: save every one). 20 keeps saving under ~5% of a trial's time.
    checkpoint_ratio: float = 0.0
    #: After this trial, wait for another one (sent with :func:`next_task`) instead of exiting.
    reuse: bool = False


class FileCheckpoint:
    """A checkpoint saved as a pickle in the trial directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> Any:
        with open(self.path, "rb") as fh:
            return pickle.load(fh)  # our own file, written by this trial's earlier attempt


class _Trial:
    """The ``trial`` argument of the objective, in the child."""

    def __init__(self, conn: Connection, task: ChildTask) -> None:
        self._conn = conn
        self._task = task
        self.checkpoint = _usable_checkpoint(task.trial_dir / CHECKPOINT)
        self.last_metrics: dict[str, Any] = {}
        self._saved_at = time.monotonic()
        self._save_cost = 0.0  # the first checkpoint is always saved

    @property
    def trial_id(self) -> str:
        return self._task.trial_id

    @property
    def dir(self) -> Path:
        return self._task.trial_dir

    def report(self, metrics: Mapping[str, float], checkpoint: Any = None) -> None:
        clean = {str(k): _plain(v) for k, v in dict(metrics).items()}
        saved = checkpoint is not None and self._save_due()
        if saved:
            started = time.monotonic()
            _save_checkpoint(self._task.trial_dir / CHECKPOINT, checkpoint)
            self._saved_at = time.monotonic()
            self._save_cost = self._saved_at - started
            self.checkpoint = FileCheckpoint(self._task.trial_dir / CHECKPOINT)
        self.last_metrics.update(clean)
        try:
            self._conn.send(("report", clean, saved))
            if not self._task.answers:
                return
            answer = self._conn.recv()
        except (EOFError, BrokenPipeError):
            os._exit(70)  # the driver is gone: nobody will record this trial
        if answer == "pause" and checkpoint is not None and not saved:
            # promotion-based ASHA resumes it from this very report: keep its checkpoint
            _save_checkpoint(self._task.trial_dir / CHECKPOINT, checkpoint)
            self._conn.send(("saved",))
        if answer in ("prune", "stop", "pause"):
            raise TrialStopped(answer)

    def _save_due(self) -> bool:
        """Whether to save this checkpoint: always, unless saving would take more than
        1/``checkpoint_ratio`` of the time (many small epochs with a costly pickle). A skipped
        one costs a re-run of at most that much training after a crash; the trial's iteration
        count on resume follows the checkpoint that was saved."""
        ratio = self._task.checkpoint_ratio
        return ratio <= 0 or time.monotonic() - self._saved_at >= ratio * self._save_cost


def _plain(value: Any) -> Any:
    """What the driver receives of a metric (:func:`sweepspec.records.plain_value`): numbers
    from numpy/torch become Python floats; nothing that could not be recorded gets through."""
    return plain_value(value)


def _save_checkpoint(path: Path, state: Any) -> None:
    """Write, then rename over the last one: a killed trial leaves the old checkpoint or the
    new one, never half of one. No fsync: a process killed at any moment loses nothing that
    reached the page cache, and only an OS crash could leave an empty file, which
    :func:`_usable_checkpoint` discards (the trial restarts from scratch). An fsync an epoch
    cost a short torch trial 10-20% of its time here."""
    tmp = path.with_suffix(".tmp")
    data = pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
    try:
        with open(tmp, "wb") as fh:
            half = len(data) // 2
            fh.write(data[:half])
            fh.flush()
            crash_point("mid_checkpoint_write", fh.fileno(), len(data) - half)
            fh.write(data[half:])
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            tmp.unlink()  # a full disk: give back what the torn copy took
        raise


def _usable_checkpoint(path: Path) -> FileCheckpoint | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if size == 0:  # torn by an OS crash before the data reached the disk
        path.rename(path.with_suffix(".empty"))
        return None
    return FileCheckpoint(path)


PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36


#: The kind of a trial's error when its disk filled up (the run stops; the trial is not failed).
DISK_FULL = "disk_full"


def _prctl(option: int, value: int) -> None:
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(option, value)
    except (OSError, AttributeError):  # not Linux: the process group alone is killed
        pass


def _die_with_parent() -> None:
    _prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


# -- every descendant ends with its trial -------------------------------------------------
#
# A trial's children are in its process group, but a grandchild that calls setsid() leaves
# it. The trial process and the process that forks trial processes (the driver, a Ray actor)
# are child subreapers: an orphaned descendant is re-parented to the nearest of them instead
# of to init, so it can be found (by parentage, in /proc) and killed with its trial.

_FORKED: set[int] = set()  # live trial processes this process forked
_BASELINE: set[int] | None = None  # this process's children when it became a subreaper


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process (from /proc; empty where there is no /proc)."""
    out: dict[int, int] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                stat = fh.read()
        except OSError:
            continue
        fields = stat.rpartition(b")")[2].split()  # the command may hold spaces and ")"
        if len(fields) > 1:
            out[int(entry)] = int(fields[1])
    return out


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first)."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    out: list[int] = []
    todo = list(children.get(pid, []))
    while todo:
        p = todo.pop(0)
        out.append(p)
        todo += children.get(p, [])
    return out


def _kill(pids: list[int]) -> None:
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)


def _become_subreaper() -> None:
    """Make this process (the one that forks trial processes) a child subreaper, once."""
    global _BASELINE
    if _BASELINE is None:
        _BASELINE = set(descendants(os.getpid()))
        _prctl(PR_SET_CHILD_SUBREAPER, 1)


def reap_orphans() -> None:
    """Kill and reap what a dead trial process left: processes re-parented to this one that it
    did not fork as trial processes."""
    if _BASELINE is None:
        return
    me = os.getpid()
    orphans = [
        p for p, parent in _parents().items() if parent == me and p not in _FORKED | _BASELINE
    ]
    for p in orphans:
        tree = descendants(p)
        _kill([p, *tree])
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(p, 0)


def _isolate(task: ChildTask) -> None:
    os.setpgid(0, 0)
    _die_with_parent()
    _prctl(PR_SET_CHILD_SUBREAPER, 1)  # what the trial starts stays below it
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver decides what Ctrl-C means
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if task.cuda_devices is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = task.cuda_devices
    if task.memory_bytes:
        resource.setrlimit(resource.RLIMIT_AS, (task.memory_bytes, task.memory_bytes))


def _open_log(task: ChildTask) -> None:
    """stdout and stderr to the trial's ``log.txt`` (appended: retries share it)."""
    task.trial_dir.mkdir(parents=True, exist_ok=True)
    log = os.open(task.trial_dir / TRIAL_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    print(f"--- attempt {task.attempt} (pid {os.getpid()}) ---", flush=True)
    faulthandler.enable(file=sys.stderr)


def child_main(conn: Connection, task: ChildTask) -> None:
    """Entry point of the forked child; never returns normally (os._exit)."""
    code = 0
    try:
        _isolate(task)
        func = task.func
        current: ChildTask | None = task
        while current is not None:
            _open_log(current)
            new_trial()  # crash points count this trial's hits (tests)
            clean = _run_trial(conn, replace(current, func=func))
            if not (current.reuse and clean and _left_nothing() and _room_left(current)):
                break
            sys.stdout.flush()
            sys.stderr.flush()
            conn.send(("ready",))
            current = _receive_task(conn)
    except BaseException as exc:  # the trial process itself failed: say why, then exit
        code = 71
        full = isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS
        with contextlib.suppress(Exception):
            conn.send(
                (
                    "error",
                    DISK_FULL if full else "setup",
                    f"{DISK_FULL}: {_short(exc)}"
                    if full
                    else f"the trial process failed: {_short(exc)}",
                    traceback.format_exc(),
                )
            )
    finally:
        try:
            _kill(descendants(os.getpid()))  # nothing the trials started outlives this process
            sys.stdout.flush()
            sys.stderr.flush()
            conn.close()
        finally:
            os._exit(code)


def _run_trial(conn: Connection, task: ChildTask) -> bool:
    """Run one trial and send its end; False when the process should not run another."""
    trial = _Trial(conn, task)
    try:
        result = task.func(task.config, trial)
        final = dict(trial.last_metrics)
        if isinstance(result, Mapping):
            final.update({str(k): _plain(v) for k, v in result.items()})
        elif result is not None and not isinstance(result, bool):
            final["__return__"] = _plain(result)
        conn.send(("done", final))
    except TrialStopped:
        conn.send(("stopped", dict(trial.last_metrics)))
    except MemoryError:
        conn.send(("error", "oom", "MemoryError: the trial ran out of memory", ""))
        return False
    except BaseException as exc:  # the user's code failed in any way: report it
        text = traceback.format_exc()
        with contextlib.suppress(OSError):  # (the log itself may be on the full disk)
            print(text, file=sys.stderr, flush=True)
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            # not the trial's fault: the driver stops the run and the trial runs again later
            conn.send(("error", DISK_FULL, f"{DISK_FULL}: {_short(exc)}", text))
            return False
        conn.send(("error", type(exc).__name__, _short(exc), text))
    return True


def _left_nothing() -> bool:
    """No thread but this one, and no child process (a zombie is reaped): the next trial
    starts as if from a fresh fork, except for what the objective's module keeps."""
    if threading.active_count() > 1:
        return False
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return False  # a child is still running
    except ChildProcessError:
        return True  # no children at all


def _room_left(task: ChildTask) -> bool:
    """Under a memory limit (``RLIMIT_AS``), a process whose address space has grown past half
    of it is not reused: the next trial might fail where a fresh process would not."""
    if not task.memory_bytes:
        return True
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return pages * resource.getpagesize() <= task.memory_bytes // 2


def _receive_task(conn: Connection) -> ChildTask | None:
    try:
        message = conn.recv()
    except (EOFError, OSError):
        return None
    if isinstance(message, tuple) and len(message) == 2 and message[0] == "task":
        task: ChildTask = message[1]
        return task
    return None


def fork_child(task: ChildTask, via: Executor | None = None) -> tuple[Any, Connection]:
    """Fork a trial process running ``task``: ``(process, the parent's end of its pipe)``.
    ``via``: fork from that executor's thread (the child dies with the thread that forked it,
    ``PR_SET_PDEATHSIG``)."""
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    process = ctx.Process(target=child_main, args=(child, task), daemon=False)

    def start() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # fork() with threads
            process.start()

    _become_subreaper()
    if via is None:
        start()
    else:
        via.submit(start).result()
    child.close()
    if process.pid is not None:
        _FORKED.add(process.pid)
    return process, parent


def kill_group(pid: int | None, sig: int) -> None:
    """Send ``sig`` to a trial process's group (it and anything it started), if it is there."""
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def discard(process: Any, conn: Connection) -> None:
    """Kill a trial process and anything it started: its process group, every descendant
    (those that left the group with setsid() too), and what a dead one left behind."""
    if process.pid is not None:
        _kill(descendants(process.pid))
    kill_group(process.pid, signal.SIGKILL)
    process.join(timeout=5)
    _FORKED.discard(process.pid)
    reap_orphans()
    with contextlib.suppress(OSError):
        conn.close()


def next_task(conn: Connection, task: ChildTask) -> None:
    """Send ``task`` to a reused child that said ``("ready",)`` (it keeps its own function:
    an objective loaded from a file need not pickle)."""
    conn.send(("task", replace(task, func=None)))  # type: ignore[arg-type]


def _short(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."


def died_before_returning(exitcode: int | None) -> str:
    """Why a trial process that never sent its end is gone: the signal or the exit code."""
    how = (
        f"killed by signal {signal.Signals(-exitcode).name}"
        if exitcode and exitcode < 0
        else f"exited with code {exitcode}"
    )
    return f"the trial process {how} before returning"
