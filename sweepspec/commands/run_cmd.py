"""``sweepspec run SPEC [k=v ...] [--fresh | --warm-start]``: run or resume a sweep."""

from __future__ import annotations

import argparse
import sys

from sweepspec.backends import backend_for, read_ledger
from sweepspec.errors import SweepspecError
from sweepspec.load import LoadedSpec, load_spec
from sweepspec.run.progress import Progress
from sweepspec.run.rundir import RunDir, spec_changes
from sweepspec.run.session import RunOptions
from sweepspec.search.plan import trial_count

__all__ = ["INTERRUPTED", "main", "run"]

INTERRUPTED = "interrupted: run the same command again to resume"


def run(spec_path: str, overrides: list[str], options: RunOptions) -> int:
    loaded = load_spec(spec_path, overrides)
    spec = loaded.spec
    total = trial_count(spec)
    progress = Progress(
        spec.run_name, total, spec.objective.directions, time_budget=spec.stop.sweep.time_budget
    )
    progress.start(_resume_note(loaded, options, total))
    outcome = None
    try:
        with loaded.located():
            outcome = backend_for(spec).run(loaded, options, progress)
    except KeyboardInterrupt:
        pass  # the backend stopped its trials and queued them to run again
    finally:
        progress.stop()
    if outcome is None:
        print(INTERRUPTED, file=sys.stderr)
        return 130
    progress.final(outcome.ledger, outcome.elapsed_s, outcome.reason)
    if outcome.exit_code == 130:
        print(INTERRUPTED, file=sys.stderr)
    elif outcome.exit_code:
        print(f"sweep stopped: {outcome.reason}", file=sys.stderr)
    return int(outcome.exit_code)


def _resume_note(loaded: LoadedSpec, options: RunOptions, total: int) -> str | None:
    """ "resuming: 11 of 20 done" when the run exists and this spec resumes it ("joining" for a
    worker); None for a new run, and for one the session will refuse (it says why)."""
    rundir = RunDir.for_spec(loaded)
    if (options.fresh or options.warm_start) and not options.worker:
        return None
    try:
        if not rundir.exists():
            return None
        meta = rundir.read_meta()
        if spec_changes(loaded, meta):
            return None
        done = read_ledger(loaded, rundir, meta).finished
    except SweepspecError:
        return None  # a damaged run: the session repairs it, or says what is wrong
    return f"{'joining' if options.worker else 'resuming'}: {done} of {total} done"


def main(args: argparse.Namespace) -> int:
    options = RunOptions(
        fresh=args.fresh, warm_start=args.warm_start, started=getattr(args, "started", None)
    )
    return run(args.spec, args.overrides, options)
