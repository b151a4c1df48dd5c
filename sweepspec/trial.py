"""The objective contract: what a training function receives as ``trial``.

    def train(config: dict, trial: sweepspec.Trial) -> dict | None:
        state = trial.checkpoint.load() if trial.checkpoint else init()
        ...
        trial.report({"loss": loss}, checkpoint=state)   # may end the trial (TrialStopped)
        return {"loss": loss}

Backends implement :class:`Trial`; the same function runs unchanged on every backend.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

__all__ = ["Checkpoint", "Trial", "TrialStopped"]


class TrialStopped(BaseException):
    """Raised by :meth:`Trial.report` when the scheduler or a stop rule ends the trial.

    A ``BaseException`` so that an objective's ``except Exception`` does not swallow it; the
    engine catches it and records the trial as stopped early (PRUNED), not failed."""


@runtime_checkable
class Checkpoint(Protocol):
    """A saved state of a trial (what was passed to ``report(checkpoint=...)``)."""

    def load(self) -> Any:
        """The state object, as it was reported."""
        ...


@runtime_checkable
class Trial(Protocol):
    """What the objective function gets besides its config."""

    @property
    def trial_id(self) -> str:
        """A stable id of this trial within the run."""
        ...

    @property
    def dir(self) -> Path:
        """A directory for this trial's own files (kept in the run directory)."""
        ...

    @property
    def checkpoint(self) -> Checkpoint | None:
        """The last checkpoint to resume from (a retry, a resumed run, PBT), or None."""
        ...

    def report(self, metrics: Mapping[str, float], checkpoint: Any = None) -> None:
        """Send intermediate metrics (and optionally a picklable state to checkpoint).

        Raises :class:`TrialStopped` when the trial must end; let it propagate."""
        ...
