"""The ledger: a run's logical trials, each exactly once, whatever the backend.

One logical trial may take several attempts (a retry after an exception, a re-run after its
process was killed); each backend folds its own records into one :class:`Ledger` (the Optuna
backend from its study's trials, the Ray backend from ``ledger.jsonl``), which ``status``,
``results``, progress and the sweep's stops read."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from sweepspec.records import TERMINAL, TrialRecord

__all__ = ["Ledger", "records_in_order"]


@dataclass
class Ledger:
    """Logical trials by id: terminal (COMPLETE, PRUNED, FAILED) or in flight."""

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


def records_in_order(ledger: Ledger) -> Sequence[TrialRecord]:
    """The ledger's records by trial id (numeric ids in number order)."""
    return sorted(
        ledger.records.values(), key=lambda r: int(r.trial_id) if r.trial_id.isdigit() else 0
    )
