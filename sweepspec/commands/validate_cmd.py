"""``sweepspec validate PATH...``: check spec files; no user code runs."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from pathlib import Path

from sweepspec.errors import Location, Problem, SweepspecError, render_problems
from sweepspec.load import load_spec

__all__ = ["collect", "main", "validate_paths"]

SUFFIXES = (".yaml", ".yml")


def collect(paths: list[str]) -> tuple[list[Path], list[Problem]]:
    """Spec files under ``paths`` (directories recursively; files starting with ``_`` are
    bases for ``extends:`` and are checked only through the specs that extend them)."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            files += sorted(
                p
                for p in path.rglob("*")
                if p.suffix in SUFFIXES and not p.name.startswith("_") and p.is_file()
            )
        elif path.exists():
            files.append(path)
        else:
            problems.append(Problem("no such file or directory", location=Location(raw), code="io"))
    return files, problems


def validate_paths(paths: list[str]) -> tuple[int, list[Problem]]:
    files, problems = collect(paths)
    for file in files:
        try:
            load_spec(file)
        except SweepspecError as exc:
            if os.environ.get("SWEEPSPEC_DEBUG") == "1":
                traceback.print_exception(exc)  # SWEEPSPEC_DEBUG=1 shows every traceback
            problems += exc.problems
    return len(files), problems


def main(args: argparse.Namespace) -> int:
    count, problems = validate_paths(args.paths)
    if args.format == "json":
        print(render_problems(problems, "json"))
    elif problems:
        print(render_problems(problems, args.format), file=sys.stdout)
    if args.format == "text":
        bad = len({p.location.file for p in problems if p.location})
        summary = (
            f"{count} spec(s) checked, {bad} with errors" if problems else f"{count} spec(s) valid"
        )
        print(summary, file=sys.stderr)
    if count == 0 and not problems:
        print("no spec files found", file=sys.stderr)
        return 1
    return 1 if problems else 0
