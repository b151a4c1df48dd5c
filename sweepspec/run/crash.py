"""Deterministic crash points, for the tests that prove a crash at any moment loses at most
the trials in flight: ``SWEEPSPEC_CRASH_AT=<point>:<n>[,<point>:<n>...]`` makes the process
that reaches ``point`` for the n-th time kill itself with SIGKILL, there and then.

Points (the processes that reach them):

* ``after_ask``: the driver has a new trial from the searcher, not yet started;
* ``after_record_append``: the driver appended a record of the run (the Optuna journal, the
  Ray backend's ledger.jsonl);
* ``after_report``: the driver received a report of a running trial (between its start and
  end records);
* ``mid_checkpoint_write``: a trial process wrote half of a checkpoint;
* ``mid_results_write``: the driver wrote half of a results file (trials.csv, summary.json).

With ``SWEEPSPEC_CRASH_ONCE=<file>`` a point kills only if it can create ``file`` (the first
process to get there, of all a run's processes and of the runs that resume it): a retry of the
trial it killed, or the resumed run, then goes on.

Unset (always, outside tests), a point costs one dictionary lookup.
"""

from __future__ import annotations

import os
import signal

__all__ = ["POINTS", "crash_point"]

POINTS = (
    "after_ask",
    "after_record_append",
    "after_report",
    "mid_checkpoint_write",
    "mid_results_write",
)
_ENV = "SWEEPSPEC_CRASH_AT"
_ONCE = "SWEEPSPEC_CRASH_ONCE"
_plan: dict[str, int] | None = None
_hits: dict[str, int] = {}


def _parse() -> dict[str, int]:
    out: dict[str, int] = {}
    for item in os.environ.get(_ENV, "").split(","):
        name, _, n = item.strip().partition(":")
        if name in POINTS:
            out[name] = int(n) if n.isdigit() else 1
    return out


def crash_point(name: str) -> None:
    """Die here (SIGKILL) if ``SWEEPSPEC_CRASH_AT`` names this point and this is its n-th hit
    in this process."""
    global _plan
    if _plan is None:
        _plan = _parse()
    if name not in _plan:
        return
    _hits[name] = _hits.get(name, 0) + 1
    if _hits[name] != _plan[name]:
        return
    once = os.environ.get(_ONCE)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            return
    os.kill(os.getpid(), signal.SIGKILL)


def _reset_after_fork() -> None:
    global _plan
    _plan = None  # a forked trial process reads its environment (an objective may arm it)
    _hits.clear()  # and counts its own hits


os.register_at_fork(after_in_child=_reset_after_fork)
