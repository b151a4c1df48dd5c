"""Exactly-once accounting over Optuna trials.

One *logical* trial may take several Optuna trials: a retry after an exception, a re-run
after its process was killed. Each Optuna trial carries user attributes:

- ``logical``: the logical id (the number of its first attempt), ``attempt``: 0, 1, ...
- ``final``: on a FAIL that ends the logical trial (retries exhausted, timeout, NaN)
- ``rejected``: a sample that broke a constraint (told to the searcher, never run)
- ``warm``: a trial copied from an old run by ``--warm-start`` (never counted)
- ``owner``: ``host:lease-id`` of the process running it; ``requeue_of``: the attempt it
  replaces after that process died.
- ``heartbeat`` (``time.time()``, restamped every few seconds) and ``lease_dir`` (where the
  owner's lease lives): RDB storages only, for liveness across machines and run directories.

The ledger folds them into logical trials: terminal (COMPLETE, PRUNED, FAILED) or in flight.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sweepspec.results import TrialRecord

__all__ = ["Ledger", "tally"]

TERMINAL = ("COMPLETE", "PRUNED", "FAILED")


@dataclass
class Ledger:
    """Logical trials by id, with their Optuna attempts."""

    records: dict[str, TrialRecord] = field(default_factory=dict)
    in_flight: set[str] = field(default_factory=set)
    requeued: set[int] = field(default_factory=set)
    rejected: int = 0

    @property
    def finished(self) -> int:
        return sum(1 for r in self.records.values() if r.state in TERMINAL)

    @property
    def failed(self) -> int:
        return sum(1 for r in self.records.values() if r.state == "FAILED")

    def count(self, state: str) -> int:
        return sum(1 for r in self.records.values() if r.state == state)


def _state(t: Any) -> str:
    return str(t.state.name)


def _record_for(t: Any, decode: Any) -> TrialRecord:
    attrs = t.user_attrs
    metrics = dict(attrs.get("metrics") or {})
    return TrialRecord(
        trial_id=str(attrs.get("logical", t.number)),
        state="RUNNING",
        metrics=metrics,
        params=decode(t.params),
        config=attrs.get("config") or {},
        iterations=int(attrs.get("iterations", 0)),
        duration_s=attrs.get("duration_s"),
        attempts=int(attrs.get("attempt", 0)) + 1,
        error=attrs.get("error"),
    )


def tally(trials: Iterable[Any], decode: Any = dict) -> Ledger:
    """Fold Optuna trials (in number order) into logical trials."""
    ledger = Ledger()
    for t in sorted(trials, key=lambda t: t.number):
        attrs = t.user_attrs
        if attrs.get("warm"):
            continue
        if attrs.get("rejected"):
            ledger.rejected += 1
            continue
        if "requeue_of" in attrs:
            ledger.requeued.add(int(attrs["requeue_of"]))
        state = _state(t)
        if state == "FAIL" and "logical" not in attrs:
            continue  # asked, never started (its driver died first): its re-queue stands in
        logical = str(attrs.get("logical", t.number))
        if state == "WAITING" and "logical" not in attrs:
            ledger.in_flight.add(f"waiting-{t.number}")  # try_first / grid point, not yet run
            continue
        previous = ledger.records.get(logical)
        if previous is not None and previous.state in TERMINAL:
            continue  # a terminal attempt is final: later duplicates (there should be none) lose
        record = _record_for(t, decode)
        if state == "COMPLETE":
            record.state = "COMPLETE"
        elif state == "PRUNED":
            record.state = "PRUNED"
        elif state == "FAIL" and attrs.get("final"):
            record.state = "FAILED"
        elif state in ("RUNNING", "WAITING"):
            record.state = "RUNNING"
        else:  # a FAIL that is being retried or re-run: its next attempt follows
            record.state = "RUNNING"
        if previous is not None and record.duration_s is None:
            record.duration_s = previous.duration_s
        ledger.records[logical] = record
        if record.state == "RUNNING":
            ledger.in_flight.add(logical)
        else:
            ledger.in_flight.discard(logical)
    return ledger


def records_in_order(ledger: Ledger) -> Sequence[TrialRecord]:
    return sorted(
        ledger.records.values(), key=lambda r: int(r.trial_id) if r.trial_id.isdigit() else 0
    )
