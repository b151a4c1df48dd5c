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
import textwrap
import time
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn

from sweepspec.errors import SweepspecError, render_problems

__all__ = ["build_parser", "main"]

REPORT_URL = "https://github.com/sweepspec/sweepspec/issues"

DESCRIPTION = (
    "A hyperparameter sweep as a YAML file: validated without running anything, run in "
    "parallel on every core (Optuna) or a Ray cluster, resumed after a crash or Ctrl-C, "
    "reviewed in a pull request."
)
EPILOG = """common commands:
  sweepspec validate sweeps/                 check every spec (no user code runs)
  sweepspec plan sweeps/dqn.yaml             what it compiles to, sampled configs, budget
  sweepspec run sweeps/dqn.yaml              run, or resume after a crash or Ctrl-C
  sweepspec status sweeps/dqn.yaml           progress, best so far, ETA
  sweepspec results sweeps/dqn.yaml          top trials, best.yaml, trials.csv, plots
  sweepspec diff --rev origin/main sweeps/dqn.yaml   what a change does to the sweep
  sweepspec dashboard sweeps/dqn.yaml        optuna-dashboard on the run (Optuna backend)

exit codes: 0 ok, 1 an error in the input (no traceback), 2 usage, 3 a bug in sweepspec,
130 interrupted. SWEEPSPEC_DEBUG=1 shows every traceback.
shell completion: eval "$(sweepspec completion bash)" (or zsh, tcsh)"""

#: shtab's "complete a file name" for each shell (``shtab.FILE``), set on path arguments
#: without importing shtab for every command
_FILE = {"bash": "_shtab_compgen_files", "zsh": "_files", "tcsh": "f"}
_FORMATTER = argparse.RawDescriptionHelpFormatter
_Sub = argparse._SubParsersAction  # the type of add_subparsers()' result


def _files(action: argparse.Action) -> argparse.Action:
    action.complete = _FILE  # type: ignore[attr-defined]  # read by shtab
    return action


def _command_parser(
    sub: _Sub[argparse.ArgumentParser], name: str, summary: str, text: str
) -> argparse.ArgumentParser:
    description = textwrap.fill(f"{summary[0].upper()}{summary[1:]}. {text}", 79)
    return sub.add_parser(name, help=summary, description=description, formatter_class=_FORMATTER)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a whole number is needed, but got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, but got {value}")
    return value


def _spec_args(p: argparse.ArgumentParser) -> None:
    _files(p.add_argument("spec", metavar="SPEC", help="the spec file"))
    p.add_argument(
        "overrides",
        nargs="*",
        metavar="KEY=VALUE",
        help="overrides in dotlist form, e.g. trials.num_samples=10 (as for `run`)",
    )


def _format(
    p: argparse.ArgumentParser, choices: tuple[str, ...], *, json_alias: bool = False
) -> None:
    p.add_argument(
        "--format",
        choices=choices,
        default=choices[0],
        help=f"output format (default {choices[0]})",
    )
    if json_alias:  # the old flag, kept working for scripts; --format json replaces it
        p.add_argument(
            "--json", dest="format", action="store_const", const="json", help=argparse.SUPPRESS
        )


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (also what shell completion is generated from)."""
    parser = argparse.ArgumentParser(
        prog="sweepspec",
        description=textwrap.fill(DESCRIPTION, 79),
        epilog=EPILOG,
        formatter_class=_FORMATTER,
    )
    parser.add_argument("--version", action="version", version="sweepspec 0.1.0")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _validate_parser(sub)
    _run_parsers(sub)
    _plan_parser(sub)
    _status_parser(sub)
    _results_parser(sub)
    _diff_parser(sub)
    _dashboard_parser(sub)
    _schema_parser(sub)
    p = _command_parser(
        sub,
        "completion",
        "print a shell completion script",
        'Load it in the shell\'s start-up file, e.g. `eval "$(sweepspec completion bash)"` '
        "in ~/.bashrc, or write it where the shell looks for completions.",
    )
    p.add_argument("shell", choices=("bash", "zsh", "tcsh"), help="the shell to complete for")
    return parser


def _validate_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "validate",
        "check spec files or directories (no user code runs)",
        "Reads each spec, checks every key and rule and samples the space against the "
        "constraints; imports no user code, nor Ray, Optuna or torch. Exit 0 when all are "
        "valid, 1 when any is not.",
    )
    _files(
        p.add_argument(
            "paths", nargs="+", metavar="PATH", help="spec files, or directories to search"
        )
    )
    p.add_argument(
        "--format",
        choices=("text", "json", "github"),
        default="text",
        help="text (default), json (a list of problems with stable codes) or github "
        "(annotations on a pull request)",
    )
    p.add_argument(
        "--changed",
        action="store_true",
        help="PATHs are changed files (a pre-commit hook): check the sweep specs among them "
        "and the specs that extend a changed base; skip other YAML files",
    )


def _run_parsers(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "run",
        "run or resume a sweep",
        "Runs the spec's trials in parallel until its budget is used; the same command "
        "again resumes (after a crash, a kill or Ctrl-C) or, with a larger budget, extends "
        "the run. Results land in <storage>/<name>/.",
    )
    _spec_args(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--fresh", action="store_true", help="start over (the old run is kept aside)")
    g.add_argument(
        "--warm-start",
        action="store_true",
        help="a new run whose searcher first learns from the old run's trials",
    )
    p = _command_parser(
        sub,
        "worker",
        "join a running sweep as one more worker",
        "For a spec whose storage is a shared database (PostgreSQL): this process launches "
        "trials of the same sweep under the shared gate, and the total stays num_samples.",
    )
    _spec_args(p)


def _plan_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "plan",
        "show what a spec compiles to, sampled configs and the budget",
        "Runs nothing: the resolved spec, the backend's searcher and scheduler, a table of "
        "configs (try_first ones first, those that break a constraint marked), the share of "
        "samples that satisfies the constraints, the scheduler's expected saving and the "
        "compute budget.",
    )
    _spec_args(p)
    _format(p, ("text", "json"))


def _status_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "status",
        "show trials done, running and failed, the best so far and an ETA",
        "Of a run in progress or finished; reads the run directory and changes nothing. A "
        "spec that no longer matches its run is reported, and the run shown as it ran.",
    )
    _spec_args(p)
    _format(p, ("text", "json"), json_alias=True)


def _results_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "results",
        "show the top trials; write trials.csv, best.yaml, summary.json and plots",
        "Writes the results files into the run directory (unless the spec no longer matches "
        "the run) and logs missing trials to MLflow when the spec names it.",
    )
    _spec_args(p)
    _format(p, ("table", "csv", "json"), json_alias=True)
    p.add_argument(
        "--top", type=_positive, default=10, metavar="N", help="rows in the table (default 10)"
    )
    p.add_argument(
        "--no-plots",
        action="store_true",
        help="do not draw <run>/plots/*.png (report.html is still written)",
    )
    _files(
        p.add_argument(
            "--export-best",
            metavar="PATH",
            help="also write best.yaml's content (the best trial's full config) to PATH",
        )
    )
    _files(p.add_argument("--trials-csv", metavar="PATH", help="also write trials.csv to PATH"))


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a port number is needed, but got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"0 <= port <= 65535 must hold, but got {value}")
    return value


def _dashboard_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "dashboard",
        "serve optuna-dashboard on a run, until Ctrl-C",
        "Reads the run's Optuna storage (while the sweep runs or after) and serves it "
        "read-only; needs the dashboard extra: pip install 'sweepspec[dashboard]'.",
    )
    _spec_args(p)
    p.add_argument(
        "--port", type=_port, default=8080, metavar="N", help="port (default 8080; 0: any free)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")


def _diff_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "diff",
        "show what changes between two specs, for review",
        "Ranges widened or narrowed, parameters added or removed, the budget as a factor, "
        "whether a run of the old spec can resume as the new one, and what the existing run "
        "of the new spec would do. `diff A B` compares two files; `diff --rev REV A` compares "
        "A with its version at a git revision (extends: bases at that revision too).",
    )
    _files(p.add_argument("a", metavar="A", help="the old spec (or, with --rev, the spec)"))
    _files(p.add_argument("b", metavar="B", nargs="?", help="the new spec"))
    p.add_argument(
        "--rev",
        metavar="REV",
        help="compare A with its version at this git revision (e.g. origin/main)",
    )
    _format(p, ("text", "github", "json"))
    p.add_argument(
        "--exit-code",
        action="store_true",
        help="exit 1 when the specs differ, 0 when they do not (as `git diff --exit-code`)",
    )


def _schema_parser(sub: _Sub[argparse.ArgumentParser]) -> None:
    p = _command_parser(
        sub,
        "schema",
        "print or check the JSON Schema of the spec",
        "The schema editors use to complete and check spec files (see the modeline in "
        "sweeps/*.yaml). Without options it is printed.",
    )
    g = p.add_mutually_exclusive_group()
    _files(
        g.add_argument(
            "--check",
            nargs="?",
            const=True,
            default=False,
            metavar="PATH",
            help="fail if the models differ from the schema shipped in the package (and "
            "schemas/ of a source checkout), or from the copy at PATH",
        )
    )
    _files(
        g.add_argument(
            "--write",
            nargs="?",
            const=True,
            default=False,
            metavar="PATH",
            help="write the schema to PATH (a file, or a directory for sweepspec-v1.json); "
            "without PATH, rewrite the copies of a source checkout",
        )
    )


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
    parser = build_parser()
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
