"""``sweepspec worker SPEC``: join a running sweep as one more driver (shared storage)."""

from __future__ import annotations

import argparse

from sweepspec.commands.run_cmd import run
from sweepspec.run.session import RunOptions

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    return run(
        args.spec, args.overrides, RunOptions(worker=True, started=getattr(args, "started", None))
    )
