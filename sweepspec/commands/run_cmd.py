"""``sweepspec run SPEC [k=v ...] [--fresh | --warm-start]``: run or resume a sweep."""

from __future__ import annotations

import argparse
import sys

from sweepspec.backends import backend_for
from sweepspec.load import load_spec
from sweepspec.run.progress import Progress
from sweepspec.run.session import RunOptions
from sweepspec.search.plan import trial_count

__all__ = ["main", "run"]


def run(spec_path: str, overrides: list[str], options: RunOptions) -> int:
    loaded = load_spec(spec_path, overrides)
    spec = loaded.spec
    progress = Progress(spec.run_name, trial_count(spec), spec.objective.directions)
    progress.start()
    try:
        with loaded.located():
            outcome = backend_for(spec).run(loaded, options, progress)
    finally:
        progress.stop()
    progress.final(outcome.ledger, outcome.elapsed_s, outcome.reason)
    if outcome.exit_code:
        print(f"sweep stopped: {outcome.reason}", file=sys.stderr)
    return int(outcome.exit_code)


def main(args: argparse.Namespace) -> int:
    options = RunOptions(
        fresh=args.fresh, warm_start=args.warm_start, started=getattr(args, "started", None)
    )
    return run(args.spec, args.overrides, options)
