"""Deterministic crash points, for the tests that prove a crash at any moment loses at most
the trials in flight: ``SWEEPSPEC_CRASH_AT=<point>:<n>[,<point>:<n>...]`` makes the process
that reaches ``point`` for the n-th time kill itself with SIGKILL, there and then (a trial
process counts the hits of each trial it runs: a process reused for the next trial starts
counting again, as a fresh one would).

Points (the processes that reach them):

* ``after_ask``: the driver has a new trial from the searcher, not yet started;
* ``after_record_append``: the driver appended a record of the run (the Optuna journal, the
  Ray backend's ledger.jsonl);
* ``after_report``: the driver received a report of a running trial (between its start and
  end records);
* ``mid_checkpoint_write``: a trial process wrote half of a checkpoint;
* ``mid_results_write``: the driver wrote half of a results file (trials.csv, summary.json);
* ``mid_state_write``: the driver wrote half of Ray's experiment state into ``tune/`` (the Ray
  backend; Ray copies it in a thread of the driver).

``SWEEPSPEC_FILL_AT=<point>:<n>`` with ``SWEEPSPEC_FILL_FILE=<file>`` fills the filesystem of
``file`` instead (writes it until the kernel says ENOSPC), so that the write that follows the
point meets a full disk for real (the tests mount a small tmpfs for the run directory). Write
points for it: ``before_record_append``, ``mid_checkpoint_write``, ``mid_results_write``.

With ``SWEEPSPEC_CRASH_ONCE=<file>`` a point kills only if it can create ``file`` (the first
process to get there, of all a run's processes and of the runs that resume it): a retry of the
trial it killed, or the resumed run, then goes on.

Unset (always, outside tests), a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "crash_point", "new_trial"]

POINTS = (
    "after_ask",
    "before_record_append",
    "after_record_append",
    "after_report",
    "mid_checkpoint_write",
    "mid_results_write",
    "mid_state_write",
)
_ENV = "SWEEPSPEC_CRASH_AT"
_FILL = "SWEEPSPEC_FILL_AT"
_FILL_FILE = "SWEEPSPEC_FILL_FILE"
_ONCE = "SWEEPSPEC_CRASH_ONCE"
_plan: dict[str, tuple[str, int]] | None = None
_hits: dict[str, int] = {}
_fired: set[str] = set()


def _parse() -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    for action, env in (("kill", _ENV), ("fill", _FILL)):
        for item in os.environ.get(env, "").split(","):
            name, _, n = item.strip().partition(":")
            if name in POINTS:
                out[name] = (action, int(n) if n.isdigit() else 1)
    return out


def _fill(path: str) -> None:
    """Write ``path`` until its filesystem is full (then smaller and smaller pieces, to the
    last byte)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        size = 1 << 20
        while size:
            try:
                os.write(fd, b"\0" * size)
            except OSError:
                size //= 2
    finally:
        os.close(fd)


def crash_point(name: str, fd: int | None = None, size: int = 0) -> None:
    """Die here (SIGKILL) if ``SWEEPSPEC_CRASH_AT`` names this point and this is its n-th hit
    in this process (fill the disk if ``SWEEPSPEC_FILL_AT`` does). ``fd`` and ``size``: the
    file an append is about to grow by ``size`` bytes; the disk is filled before the first
    append, from the n-th on, that needs room the file has not got yet (a file's last block has
    room for a short record whatever the disk's state)."""
    global _plan
    if _plan is None:
        _plan = _parse()
    if name not in _plan:
        return
    action, n = _plan[name]
    _hits[name] = _hits.get(name, 0) + 1
    if name in _fired or _hits[name] < n or (_hits[name] > n and action == "kill"):
        return
    if action == "fill" and fd is not None and size <= _slack(fd):
        return  # this append fits in the file's last block: the next one, then
    _fired.add(name)
    once = os.environ.get(_ONCE)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return
    if action == "fill":
        _fill(os.environ[_FILL_FILE])
        return
    os.kill(os.getpid(), signal.SIGKILL)


def _slack(fd: int) -> int:
    """The bytes an append to ``fd`` can take before the file needs another block."""
    st = os.fstat(fd)
    block = st.st_blksize or 4096
    return -st.st_size % block


def new_trial() -> None:
    """A trial process starts a trial: it reads its environment again (an objective may arm
    it) and counts this trial's hits (a reused process behaves as a freshly forked one)."""
    global _plan
    _plan = None
    _hits.clear()
    _fired.clear()


os.register_at_fork(after_in_child=new_trial)
