"""Run the sweepspec CLI with light instrumentation of the Optuna driver (not a profiler).

    python benchmarks/_driver_probe.py OUT.json run SPEC [...]

Writes to OUT.json: timestamps (``time.time()``) of the start-up phases, and for the driver's
loop the exclusive time (seconds) and call counts of: ask + suggest (``_ask_feasible``), the
ledger (``_ledger``: ``get_trials`` + ``tally``), starting a trial (``_start``: the fork),
finishing one (``_finish``: attributes + ``tell``), journal appends and journal reads. Time
inside a nested category counts only there (a journal append inside ``tell`` is "journal
write", not "finish"). ``SWEEPSPEC_PROBE_T0`` (a ``time.time()``) is the launch time.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import resource
import sys
import time
from typing import Any

T_START = time.time()
OUT = sys.argv[1]
marks: dict[str, float] = {
    "launch": float(os.environ.get("SWEEPSPEC_PROBE_T0", T_START)),
    "probe_start": T_START,
}
totals: dict[str, float] = {}
counts: dict[str, int] = {}
_stack: list[list[Any]] = []  # [name, started, paused_total]
_pid = os.getpid()


def _timed(name: str, func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        now = time.perf_counter()
        frame = [name, now, 0.0]
        _stack.append(frame)
        try:
            return func(*args, **kwargs)
        finally:
            end = time.perf_counter()
            _stack.pop()
            elapsed = end - frame[1]
            totals[name] = totals.get(name, 0.0) + elapsed - frame[2]
            counts[name] = counts.get(name, 0) + 1
            if _stack:
                _stack[-1][2] += elapsed

    return wrapper


def _mark_once(name: str, func: Any) -> Any:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        result = func(*args, **kwargs)
        marks.setdefault(name, time.time())
        return result

    return wrapper


def _install() -> None:
    import sweepspec.backends.optuna_backend.journal as journal
    import sweepspec.backends.optuna_backend.runner as runner
    import sweepspec.backends.optuna_backend.session as session
    import sweepspec.search.asker as asker

    marks["imported"] = time.time()
    session.load_objective = _mark_once("objective_loaded", session.load_objective)
    session.open_study = _mark_once("study_opened", session.open_study)
    asker.FeasibleAsker.ask = _timed("ask + suggest", asker.FeasibleAsker.ask)
    cls = runner.OptunaRunner
    for name, label in (
        ("_ledger", "ledger"),
        ("_start", "start (fork)"),
        ("_finish", "finish (attrs, tell)"),
        ("_poll", "poll (wait, receive)"),
        ("_tick", "tick"),
        ("_recover_orphans", "recover orphans"),
    ):
        if hasattr(cls, name):
            setattr(cls, name, _timed(label, getattr(cls, name)))
    original_start = cls._start

    def start(self: Any, *args: Any, **kwargs: Any) -> Any:
        marks.setdefault("first_start", time.time())
        return original_start(self, *args, **kwargs)

    cls._start = start
    original_run = cls.run

    def run(self: Any) -> Any:
        marks["loop_start"] = time.time()
        try:
            return original_run(self)
        finally:
            marks["loop_end"] = time.time()

    cls.run = run
    original_backend = journal._backend_class

    def backend_class() -> type:
        base = original_backend()
        attrs = {"append_logs": _timed("journal write", base.append_logs)}
        return type(base.__name__, (base,), attrs)

    journal._backend_class = backend_class
    from optuna.storages.journal._storage import JournalStorage

    JournalStorage._sync_with_backend = _timed("journal read", JournalStorage._sync_with_backend)


def _dump() -> None:
    if os.getpid() != _pid:
        return
    marks["exit"] = time.time()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    own = {
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "minflt": usage.ru_minflt,
        "majflt": usage.ru_majflt,
        "nvcsw": usage.ru_nvcsw,
        "nivcsw": usage.ru_nivcsw,
    }
    with open(OUT, "w") as fh:
        json.dump({"marks": marks, "totals": totals, "counts": counts, "driver": own}, fh, indent=1)


def main() -> int:
    _install()
    atexit.register(_dump)
    from sweepspec.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
