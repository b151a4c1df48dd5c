"""Progress on the terminal: a live line with rich on a TTY, plain lines otherwise; and the
ETA of a run (here and in ``sweepspec status``)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from sweepspec.records import TERMINAL, TrialRecord, best_trials
from sweepspec.run.ledger import Ledger
from sweepspec.units import format_duration

__all__ = ["Progress", "eta_seconds"]


def eta_seconds(
    records: Iterable[TrialRecord],
    remaining: int,
    concurrency: int,
    *,
    time_left: float | None = None,
) -> float | None:
    """How long ``remaining`` more trials take: the finished trials' mean duration (pruned and
    failed ones included: they are part of the mix) times ``remaining``, over ``concurrency``
    trials at a time; at most ``time_left`` (what the sweep's time budget leaves). None
    before any trial finished with a duration."""
    if remaining <= 0:
        return 0.0
    durations = [r.duration_s for r in records if r.state in TERMINAL and r.duration_s is not None]
    if not durations:
        return None if time_left is None else max(0.0, time_left)
    eta = sum(durations) / len(durations) * remaining / max(1, concurrency)
    return eta if time_left is None else max(0.0, min(eta, time_left))


class Progress:
    """Counts, best so far, elapsed and ETA."""

    def __init__(
        self,
        name: str,
        total: int,
        directions: Mapping[str, str],
        *,
        live: bool | None = None,
        stream: TextIO | None = None,
        time_budget: float | None = None,
    ) -> None:
        self.name = name
        self.total = total
        self.directions = directions
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._console: Any = None
        self._status: Any = None
        self.time_budget = time_budget
        self._last = 0.0
        self._peak = 0  # the most trials seen running at once: the run's concurrency

    def start(self, note: str | None = None) -> None:
        """Show that the run starts; ``note`` (e.g. "resuming: 11 of 20 done") on a line."""
        if self.live:
            from rich.console import Console

            self._console = Console(file=self.stream)
            if note:
                self._console.print(note, markup=False, highlight=False)
            self._status = self._console.status(f"{self.name}: starting")
            self._status.start()
        else:
            print(f"{self.name}: {self.total} trials", file=self.stream, flush=True)
            if note:
                print(note, file=self.stream, flush=True)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()

    def _line(self, ledger: Ledger, elapsed: float, running: int, *, final: bool = False) -> str:
        done = ledger.finished
        self._peak = max(self._peak, running)
        counts = (
            f"{done}/{self.total} done ({ledger.count('COMPLETE')} complete, "
            f"{ledger.count('PRUNED')} pruned, {ledger.count('FAILED')} failed), "
            f"{running} running"
        )
        best = self._best(ledger)
        eta = ""
        if not final and done < self.total:
            left = None if self.time_budget is None else self.time_budget - elapsed
            seconds = eta_seconds(
                ledger.records.values(), self.total - done, self._peak, time_left=left
            )
            if seconds is not None:
                eta = f", ETA {format_duration(seconds)}"
        return f"{self.name}: {counts}{best}, {format_duration(elapsed)}{eta}"

    def _best(self, ledger: Ledger) -> str:
        best = best_trials(ledger.records.values(), self.directions)
        if not best:
            return ""
        if len(self.directions) > 1:
            return f", Pareto front {len(best)}"
        ((name, _),) = self.directions.items()
        return f", best {name}={best[0].metrics[name]:.6g} (trial {best[0].trial_id})"

    def update(self, ledger: Ledger, elapsed: float, running: int) -> None:
        self._peak = max(self._peak, running)
        if self._status is not None and time.monotonic() - self._last > 0.2:
            self._last = time.monotonic()
            from rich.text import Text

            self._status.update(Text(self._line(ledger, elapsed, running)))  # no markup

    def trial_done(
        self, trial_id: str, state: str, metrics: Mapping[str, Any], error: str | None
    ) -> None:
        shown = ", ".join(
            f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in metrics.items()
            if k in self.directions
        )
        detail = f" {shown}" if shown else ""
        if error:
            detail += f" ({error.splitlines()[0][:200]})"
        text = f"trial {trial_id} {state}{detail}"
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)

    def final(self, ledger: Ledger, elapsed: float, reason: str) -> None:
        line = self._line(ledger, elapsed, 0, final=True)
        text = f"{line}" + ("" if reason == "done" else f" [stopped: {reason}]")
        if self._console is not None:
            self._console.print(text, markup=False, highlight=False)
        else:
            print(text, file=self.stream, flush=True)
