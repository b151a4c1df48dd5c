"""Progress on the terminal: a live line with rich on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import Any, TextIO

from sweepspec.records import best_trials
from sweepspec.run.ledger import Ledger
from sweepspec.units import format_duration

__all__ = ["Progress"]


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
    ) -> None:
        self.name = name
        self.total = total
        self.directions = directions
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self._console: Any = None
        self._status: Any = None
        self._last = 0.0
        self._started = time.monotonic()
        self._done_at_start: int | None = None

    def start(self) -> None:
        if self.live:
            from rich.console import Console

            self._console = Console(file=self.stream)
            self._status = self._console.status(f"{self.name}: starting")
            self._status.start()
        else:
            print(f"{self.name}: {self.total} trials", file=self.stream, flush=True)

    def stop(self) -> None:
        if self._status is not None:
            self._status.stop()

    def _line(self, ledger: Ledger, elapsed: float, running: int) -> str:
        done = ledger.finished
        if self._done_at_start is None:
            self._done_at_start = done
        counts = (
            f"{done}/{self.total} done ({ledger.count('COMPLETE')} complete, "
            f"{ledger.count('PRUNED')} pruned, {ledger.count('FAILED')} failed), "
            f"{running} running"
        )
        best = self._best(ledger)
        rate_done = done - self._done_at_start
        since = time.monotonic() - self._started
        eta = ""
        if rate_done > 0 and done < self.total:
            eta = f", ETA {format_duration(since / rate_done * (self.total - done))}"
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
        if self._status is not None and time.monotonic() - self._last > 0.2:
            self._last = time.monotonic()
            self._status.update(self._line(ledger, elapsed, running))

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
            self._console.print(text)
        else:
            print(text, file=self.stream, flush=True)

    def final(self, ledger: Ledger, elapsed: float, reason: str) -> None:
        line = self._line(ledger, elapsed, 0)
        text = f"{line}" + ("" if reason == "done" else f" [stopped: {reason}]")
        if self._console is not None:
            self._console.print(text)
        else:
            print(text, file=self.stream, flush=True)
