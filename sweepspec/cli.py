"""The command line: parse arguments and dispatch. No logic lives here.

Exit codes: 0 ok, 1 a user's error (printed without a traceback), 2 usage, 3 a bug in
sweepspec (traceback + "please report"), 130 interrupted. ``SWEEPSPEC_DEBUG=1`` shows every
traceback.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from sweepspec.errors import SweepspecError, render_problems

__all__ = ["main"]

REPORT_URL = "https://github.com/sweepspec/sweepspec/issues"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sweepspec", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version="sweepspec 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check spec files or directories (no user code runs)")
    p.add_argument("paths", nargs="+", metavar="PATH")
    p.add_argument("--format", choices=("text", "json", "github"), default="text")
    p.add_argument(
        "--changed",
        action="store_true",
        help="PATHs are changed files (a pre-commit hook): check the sweep specs among them "
        "and the specs that extend a changed base; skip other YAML files",
    )

    p = sub.add_parser("schema", help="print or check the JSON Schema of the spec")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--check",
        nargs="?",
        const=True,
        default=False,
        metavar="PATH",
        help="fail if the models differ from the schema shipped in the package (and "
        "schemas/ of a source checkout), or from the copy at PATH",
    )
    g.add_argument(
        "--write",
        nargs="?",
        const=True,
        default=False,
        metavar="PATH",
        help="write the schema to PATH (a file, or a directory for sweepspec-v1.json); "
        "without PATH, rewrite the copies of a source checkout",
    )

    for name, text in (
        ("run", "run or resume a sweep"),
        ("worker", "join a running sweep (shared database storage) as one more worker"),
        ("plan", "show what a spec compiles to, a preview of configs and the budget"),
        ("status", "trials done/running/failed and best so far"),
        ("results", "top trials, best.yaml, trials.csv"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("spec", metavar="SPEC")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
        if name == "run":
            g = p.add_mutually_exclusive_group()
            g.add_argument("--fresh", action="store_true", help="start over (old run kept aside)")
            g.add_argument(
                "--warm-start",
                action="store_true",
                help="new run; the searcher first learns from the old trials",
            )
        if name in ("status", "results"):
            p.add_argument("--json", action="store_true", help="machine-readable output")
        if name == "results":
            p.add_argument("--top", type=int, default=10, help="rows in the table")
            p.add_argument("--no-plots", action="store_true", help="do not draw <run>/plots/*.png")

    p = sub.add_parser("diff", help="what changes between two specs, for review")
    p.add_argument("a")
    p.add_argument("b")
    return parser


def _command(name: str) -> Callable[[argparse.Namespace], int]:
    import importlib

    module = importlib.import_module(f"sweepspec.commands.{name}_cmd")
    func: Callable[[argparse.Namespace], int] = module.main
    return func


#: Commands whose process (when ``main`` is the program's entry point) ends without the
#: interpreter's teardown: freeing every object of optuna (and often torch) takes 0.1-0.3 s.
FAST_EXIT = ("run", "worker")


def main(argv: Sequence[str] | None = None) -> int:
    started = time.monotonic()  # a run's time counts from here: imports and start-up included
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    args.started = started
    code = _dispatch(args)
    if argv is None and args.command in FAST_EXIT:
        _exit_now(code)
    return code


def _exit_now(code: int) -> NoReturn:
    """End the process as ``sys.exit(code)`` would, minus the teardown of the interpreter:
    the exit handlers run (journal fsync, logging, multiprocessing), the output is flushed."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # closed, or a reader gone (| head)
            stream.flush()
    os._exit(code)


def _dispatch(args: argparse.Namespace) -> int:
    debug = os.environ.get("SWEEPSPEC_DEBUG") == "1"
    try:
        return _command(args.command)(args)
    except SweepspecError as exc:
        if debug:
            traceback.print_exc()
        print(render_problems(exc.problems), file=sys.stderr)
        return exc.exit_code
    except BrokenPipeError:
        # the reader of our output went away (`| head`): not an error of ours
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception:
        traceback.print_exc()
        print(
            f"\nThis is a bug in sweepspec; please report it at {REPORT_URL} "
            "with the traceback above.",
            file=sys.stderr,
        )
        return 3
