"""The ledger: a run's logical trials, each exactly once, whatever the backend.

One logical trial may take several attempts (a retry after an exception, a re-run after its
process was killed); each backend folds its own records into one :class:`Ledger` (the Optuna
backend from its study's trials, the Ray backend from ``ledger.jsonl``), which ``status``,
``results``, progress and the sweep's stops read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sweepspec.records import TERMINAL, TrialRecord

__all__ = ["Ledger", "Records", "records_in_order"]


class Records(dict[str, TrialRecord]):
    """Logical trials by id, counting their states as they are set: a record is replaced
    whole (``records[tid] = record``), never changed in place once it is in, so the counts
    stay right and cost nothing to read (a run of 10,000 trials asks them every loop)."""

    def __init__(self) -> None:
        super().__init__()
        self.states: Counter[str] = Counter()
        #: the largest numeric id (-1: none; None: to recount after a delete)
        self._top: int | None = -1
        #: ids of the COMPLETE records in the order they became so (None: to recount)
        self._completed: list[str] | None = []
        #: counts the recounts of ``completed``: a reader that keeps a position in it starts
        #: over when this changed
        self.generation = 0

    def __setitem__(self, key: str, value: TrialRecord) -> None:
        old = self.get(key)
        if old is not None:
            self.states[old.state] -= 1
        super().__setitem__(key, value)
        self.states[value.state] += 1
        if self._top is not None and key.isdigit():
            self._top = max(self._top, int(key))
        was = old is not None and old.state == "COMPLETE"
        if was != (value.state == "COMPLETE"):
            if was:
                self._recount()
            elif self._completed is not None:
                self._completed.append(key)

    def _recount(self) -> None:
        self._completed = None
        self.generation += 1

    def __delitem__(self, key: str) -> None:
        self.states[self[key].state] -= 1
        if self[key].state == "COMPLETE":
            self._recount()
        super().__delitem__(key)
        self._top = None

    def pop(self, key: str, *default: Any) -> Any:
        if key in self:
            self.states[self[key].state] -= 1
            if self[key].state == "COMPLETE":
                self._recount()
            self._top = None
        return super().pop(key, *default)

    def completed_since(self, mark: tuple[int, int]) -> tuple[list[str], tuple[int, int], bool]:
        """The ids completed since ``mark`` (what an earlier call returned; ``(-1, 0)`` at
        first), the mark to pass next, and whether these are all of them anew (the first
        call, or after a recount: what the reader kept from earlier reads is stale)."""
        done = self.completed
        generation, start = mark
        anew = generation != self.generation or start > len(done)
        return done[0 if anew else start :], (self.generation, len(done)), anew

    @property
    def completed(self) -> list[str]:
        """The ids of the COMPLETE records, in the order they were set: a record once
        COMPLETE never changes, so a reader that remembers how far it read (and
        :attr:`generation`) reads only what is new."""
        if self._completed is None:
            self._completed = [k for k, r in self.items() if r.state == "COMPLETE"]
        return self._completed

    @property
    def top(self) -> int:
        """The largest numeric id (-1 when there is none)."""
        if self._top is None:
            self._top = max((int(k) for k in self if k.isdigit()), default=-1)
        return self._top

    def copy(self) -> Records:
        out = Records()
        dict.update(out, self)
        out.states = self.states.copy()
        out._top = self._top
        out._completed = None if self._completed is None else list(self._completed)
        out.generation = self.generation
        return out

    def __reduce__(self) -> tuple[Any, ...]:
        # pickle sets a dict subclass's items before its attributes: rebuild it by setting
        # the records one by one (the Ray backend's callback is pickled with its ledger)
        return (_records_of, (list(self.items()),))

    def setdefault(self, key: str, default: TrialRecord) -> TrialRecord:
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def clear(self) -> None:
        super().clear()
        self.states.clear()
        self._top = -1
        self._completed = []
        self.generation += 1


def _records_of(items: list[tuple[str, TrialRecord]]) -> Records:
    out = Records()
    out.update(items)  # record by record: the counts are kept as they are set
    return out


@dataclass
class Ledger:
    """Logical trials by id: terminal (COMPLETE, PRUNED, FAILED) or in flight."""

    records: Records = field(default_factory=Records)
    in_flight: set[str] = field(default_factory=set)
    requeued: set[int] = field(default_factory=set)
    rejected: int = 0
    #: attempts queued and not started (try_first, grid points, retries, re-runs)
    waiting: int = 0

    @property
    def finished(self) -> int:
        return sum(self.records.states[s] for s in TERMINAL)

    @property
    def failed(self) -> int:
        return self.records.states["FAILED"]

    def count(self, state: str) -> int:
        return self.records.states[state]

    def copy(self) -> Ledger:
        """A copy that changes independently (the records themselves are shared: they are
        replaced, never changed)."""
        records = self.records.copy()
        return Ledger(records, set(self.in_flight), set(self.requeued), self.rejected, self.waiting)


def records_in_order(ledger: Ledger) -> Sequence[TrialRecord]:
    """The ledger's records by trial id (numeric ids in number order)."""
    return sorted(
        ledger.records.values(), key=lambda r: int(r.trial_id) if r.trial_id.isdigit() else 0
    )
