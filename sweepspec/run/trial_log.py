"""A trial's ``log.txt`` stays bounded: a trial that floods its output keeps the first
:data:`LOG_HEAD` bytes and the latest output, with a marker where the rest was dropped.

The trial process writes the log directly (its stdout and stderr, and those of what it starts,
are the file, opened ``O_APPEND``), so nothing can block on a pipe. When the trial has ended,
the driver cuts a log longer than :data:`LOG_CAP` to its head, a marker and its last
:data:`LOG_TAIL` bytes: nothing writes it then, so nothing is lost but the middle. While the
trial runs, the driver (which polls its trials anyway) cuts a log only past
:data:`LOG_RUNNING_CAP`, to keep a runaway trial from filling the disk; such a cut races with
the writers (output written in the instant of the cut is lost with the middle)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["LOG_CAP", "LOG_HEAD", "LOG_RUNNING_CAP", "LOG_TAIL", "cap_log"]

LOG_CAP = 10 * 2**20
LOG_HEAD = 2 * 2**20
LOG_RUNNING_CAP = 2**30
LOG_TAIL = LOG_CAP // 2  # kept at each cut: the end of the output, where the error usually is
_MARKER = (
    "\n[sweepspec: output dropped here: a trial's log keeps its first {head} MiB and its last "
    "{tail} MiB]\n"
)


def cap_log(path: Path, *, running: bool = False) -> bool:
    """Bound the log at ``path`` (see the module; ``running``: its trial still runs); True
    when it cut something."""
    try:
        size = os.stat(path).st_size
    except OSError:
        return False
    if size <= (LOG_RUNNING_CAP if running else LOG_CAP):
        return False
    marker = _MARKER.format(head=LOG_HEAD >> 20, tail=LOG_TAIL >> 20).encode()
    with contextlib.suppress(OSError):
        with open(path, "rb") as fh:
            fh.seek(max(size - LOG_TAIL, LOG_HEAD))
            tail = fh.read()
            for _ in range(50):  # read on until the writer pauses: the cut then loses nothing
                more = fh.read()
                if not more:
                    break
                tail += more
        tail = tail[-LOG_TAIL:]
        newline = tail.find(b"\n")
        if 0 <= newline < 4096:
            tail = tail[newline + 1 :]  # from the start of a line
        os.truncate(path, LOG_HEAD)
        with open(path, "ab") as fh:  # (what the trial appends from now on goes after it)
            fh.write(marker + tail)
    return True
