"""``sweepspec run SPEC [k=v ...] [--fresh | --warm-start]``: run or resume a sweep."""

from __future__ import annotations

import argparse
import sys
import warnings

from sweepspec.load import load_spec
from sweepspec.run.progress import Progress

__all__ = ["main", "run"]


def run(
    spec_path: str,
    overrides: list[str],
    *,
    fresh: bool = False,
    warm_start: bool = False,
    worker: bool = False,
) -> int:
    loaded = load_spec(spec_path, overrides)
    spec = loaded.spec
    from sweepspec.compile.optuna_backend import compile_optuna

    total = compile_optuna(spec).total_trials  # num_samples x grid points
    progress = Progress(spec.run_name, total, spec.objective.directions)
    if spec.backend.type == "ray":
        from sweepspec.run.ray_session import run_ray

        runner = run_ray
    else:
        import optuna

        from sweepspec.run.optuna_session import run_optuna

        # the user chose the sampler options; Optuna's "experimental" notes are not news here
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        runner = run_optuna
    progress.start()
    try:
        outcome = runner(
            loaded, fresh=fresh, warm_start=warm_start, worker=worker, progress=progress
        )
    finally:
        progress.stop()
    progress.final(outcome.ledger, outcome.elapsed_s, outcome.reason)
    if outcome.exit_code:
        print(f"sweep stopped: {outcome.reason}", file=sys.stderr)
    return int(outcome.exit_code)


def main(args: argparse.Namespace) -> int:
    return run(args.spec, args.overrides, fresh=args.fresh, warm_start=args.warm_start)
