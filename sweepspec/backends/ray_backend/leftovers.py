"""The local Ray a run starts leaves nothing behind: its session directory is recorded in the
run directory (``ray-session.json``) while it runs; at the end of the run, and at the start of
the next one after a kill (SIGKILL of the driver leaves Ray's dashboard and runtime-env agents
alive for minutes, and they ignore SIGTERM), every process still naming that session is
killed. A Ray the run did not start (a cluster, a test's own) is never touched."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

from sweepspec.run.rundir import RunDir, atomic_write

__all__ = ["forget_session", "kill_leftovers", "processes_of", "record_session"]

FILE = "ray-session.json"


def _path(rundir: RunDir) -> Path:
    return rundir.path / FILE


def record_session(rundir: RunDir) -> None:
    """Note the session directory of the Ray this process started (after ``ray.init``)."""
    import ray

    try:
        node: Any = ray._private.worker.global_worker.node
        session = str(node.get_session_dir_path())
    except Exception:  # another Ray version's internals: nothing to record
        return
    atomic_write(_path(rundir), json.dumps({"session_dir": session, "pid": os.getpid()}) + "\n")


def processes_of(session_dir: str) -> list[int]:
    """Live processes (not this one) of the Ray session ``session_dir``: their command line
    names it, or a file they hold open lies in it (Ray's agents retitle themselves
    ``ray::DashboardAgent`` and keep their logs there open)."""
    needle = session_dir.rstrip("/")
    out: list[int] = []
    me = os.getpid()
    try:
        entries = os.listdir("/proc")
    except OSError:
        return out
    for entry in entries:
        if not entry.isdigit() or int(entry) == me:
            continue
        if _names(int(entry), needle):
            out.append(int(entry))
    return out


def _names(pid: int, session: str) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            if session.encode() in fh.read():
                return True
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target == session or target.startswith(session + "/"):
                    return True
    except OSError:  # gone, or not ours to look into
        return False
    return False


def kill_leftovers(rundir: RunDir, *, wait_s: float = 5.0) -> int:
    """Kill what is left of the Ray session ``ray-session.json`` names (unless the process
    that started it still runs: another session of this run); returns how many were killed."""
    try:
        data = json.loads(_path(rundir).read_text(encoding="utf-8"))
        session = str(data["session_dir"])
        owner = int(data.get("pid", 0))
    except (OSError, ValueError, KeyError, TypeError):
        return 0
    if owner and owner != os.getpid() and _alive(owner):
        return 0
    if not session.startswith(("/tmp/", "/")) or len(session) < 10:
        return 0  # not a session directory: never match widely
    pids = processes_of(session)
    for p in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(p, signal.SIGKILL)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    return len(pids)


def forget_session(rundir: RunDir) -> None:
    _path(rundir).unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rpartition(b")")[2].split()[0]
    except (OSError, IndexError):
        return False
    return state != b"Z"
