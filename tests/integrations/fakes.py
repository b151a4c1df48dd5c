"""A stand-in for the ``trial`` an objective gets: it records what is reported and, on demand,
answers a report the way a scheduler stops a trial (by raising ``TrialStopped``)."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sweepspec.trial import TrialStopped


@dataclass
class SavedCheckpoint:
    state: Any

    def load(self) -> Any:
        return self.state


@dataclass
class RecordingTrial:
    """``stop_at``: the report (1-based) whose answer stops the trial, as ``answer``."""

    dir: Path
    checkpoint: SavedCheckpoint | None = None
    stop_at: int | None = None
    answer: str = "prune"
    trial_id: str = "0"
    reports: list[dict[str, float]] = field(default_factory=list)
    checkpoints: list[Any] = field(default_factory=list)

    def report(self, metrics: dict[str, float], checkpoint: Any = None) -> None:
        self.reports.append(dict(metrics))
        # through pickle, as the engine saves it: what comes back is what a resume loads
        self.checkpoints.append(
            None if checkpoint is None else pickle.loads(pickle.dumps(checkpoint))
        )
        if self.stop_at is not None and len(self.reports) >= self.stop_at:
            raise TrialStopped(self.answer)

    def resumed_from(self, index: int, **kwargs: Any) -> RecordingTrial:
        """A new trial that starts from this one's ``index``-th checkpoint."""
        return RecordingTrial(
            dir=self.dir, checkpoint=SavedCheckpoint(self.checkpoints[index]), **kwargs
        )

    def values(self, key: str) -> list[float]:
        return [r[key] for r in self.reports]
