"""Exactly-once accounting over Optuna trials: fold a study's trials into the run's ledger.

One *logical* trial may take several Optuna trials: a retry after an exception, a re-run
after its process was killed. Each Optuna trial carries user attributes:

- ``logical``: the logical id (dense: 0, 1, ... in the order logical trials were launched;
  runs before dense ids used the number of the first attempt), ``attempt``: 0, 1, ...
- ``final``: on a FAIL that ends the logical trial (retries exhausted, timeout, NaN)
- ``rejected``: a sample that broke a constraint (told to the searcher, never run)
- ``warm``: a trial copied from an old run by ``--warm-start`` (never counted)
- ``owner``: ``host:lease-id`` of the process running it; ``requeue_of``: the attempt it
  replaces after that process died.
- ``paused``: on a PRUNED attempt that promotion-based ASHA paused at a rung (its checkpoint
  kept): a later attempt of the same logical trial (its promotion) supersedes it.
- ``heartbeat`` (``time.time()``, restamped every few seconds) and ``lease_dir`` (where the
  owner's lease lives): RDB storages only, for liveness across machines and run directories.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sweepspec.records import TERMINAL, TrialRecord, utc_iso
from sweepspec.run.ledger import Ledger

if TYPE_CHECKING:
    from optuna.trial import FrozenTrial

__all__ = ["PAUSED_ATTR", "Tally", "tally"]

PAUSED_ATTR = "paused"

Decode = Callable[[Mapping[str, Any]], dict[str, Any]]


def _record_for(t: FrozenTrial, decode: Decode) -> TrialRecord:
    attrs = t.user_attrs
    return TrialRecord(
        trial_id=str(attrs.get("logical", t.number)),
        state="RUNNING",
        metrics=dict(attrs.get("metrics") or {}),
        params=decode(t.params),
        config=attrs.get("config") or {},
        iterations=int(attrs.get("iterations", 0)),
        duration_s=attrs.get("duration_s"),
        attempts=int(attrs.get("attempt", 0)) + 1,
        error=attrs.get("error"),
        started_at=utc_iso(t.datetime_start),
        ended_at=utc_iso(t.datetime_complete),
    )


def tally(trials: Iterable[FrozenTrial], decode: Decode = dict) -> Ledger:
    """Fold Optuna trials (in number order) into logical trials."""
    ledger = Ledger()
    for t in sorted(trials, key=lambda t: t.number):
        _fold(ledger, t, decode)
    return ledger


class Tally:
    """:func:`tally` for a driver that asks again and again: a finished Optuna trial never
    changes, so the trials before the first unfinished one are folded once, and each call
    folds only the rest (the trials in flight) onto a copy of that. The cost of a call does
    not grow with the trials folded so far, but for a dictionary copy."""

    def __init__(self, decode: Decode = dict) -> None:
        self.decode = decode
        self._base = Ledger()
        self._frontier = 0  # trials[:frontier] are finished and folded into _base
        #: Optuna trials folded by this tally's calls, all told (a test reads it: it must
        #: grow with the trials in flight, not with the run)
        self.folded = 0

    def update(self, fetch: Callable[[int], Sequence[FrozenTrial]]) -> Ledger:
        """The ledger now; ``fetch(n)``: the study's trials numbered n and on, in order."""
        start = self._frontier
        tail = fetch(start)
        if any(t.number != i for i, t in enumerate(tail, start)):
            return tally(fetch(0), self.decode)  # not one study's dense numbers: fold it all
        i = 0
        while i < len(tail) and tail[i].state.is_finished():
            _fold(self._base, tail[i], self.decode)
            i += 1
        self._frontier += i
        self.folded += len(tail)
        ledger = self._base.copy()
        for t in tail[i:]:
            _fold(ledger, t, self.decode)
        return ledger


def _fold(ledger: Ledger, t: FrozenTrial, decode: Decode) -> None:
    """Fold one Optuna trial (the next by number) into ``ledger``."""
    attrs = t.user_attrs
    if attrs.get("warm"):
        return
    if attrs.get("rejected"):
        ledger.rejected += 1
        return
    if "requeue_of" in attrs:
        ledger.requeued.add(int(attrs["requeue_of"]))
    state = t.state.name
    if state == "WAITING":
        ledger.waiting += 1
    if state == "FAIL" and "logical" not in attrs:
        return  # asked, never started (its driver died first): its re-queue stands in
    logical = str(attrs.get("logical", t.number))
    if state == "WAITING" and "logical" not in attrs:
        ledger.in_flight.add(f"waiting-{t.number}")  # try_first / grid point, not yet run
        return
    if state == "RUNNING" and "logical" not in attrs:
        ledger.in_flight.add(f"asked-{t.number}")  # being launched (or its driver died)
        return
    previous = ledger.records.get(logical)
    if previous is not None and previous.state in TERMINAL and not previous.paused:
        return  # a terminal attempt is final: later duplicates (there should be none) lose
    record = _record_for(t, decode)
    if state == "COMPLETE":
        record.state = "COMPLETE"
    elif state == "PRUNED":
        record.state = "PRUNED"
        record.paused = bool(attrs.get(PAUSED_ATTR))  # its promotion, if any, follows
    elif state == "FAIL" and attrs.get("final"):
        record.state = "FAILED"
    else:  # running or waiting, or a FAIL being retried or re-run: its next attempt follows
        record.state = "RUNNING"
    if previous is not None:  # a later attempt: the logical trial started with the first
        record.started_at = previous.started_at or record.started_at
        if record.duration_s is None:
            record.duration_s = previous.duration_s
    ledger.records[logical] = record
    if record.state == "RUNNING":
        ledger.in_flight.add(logical)
    else:
        ledger.in_flight.discard(logical)
