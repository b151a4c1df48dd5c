"""``sweepspec schema [--check [PATH] | --write [PATH]]``.

Without PATH, ``--check`` compares the models with the schema shipped inside the package and,
in a source checkout, with ``schemas/sweepspec-v1.json``; ``--write`` rewrites those. With PATH
(a ``.json`` file, or a directory for ``sweepspec-v1.json``) they check or write that copy: a
repository of specs keeps one for its editors' modelines and checks it in CI.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sweepspec.errors import Location, Problem, SweepspecError
from sweepspec.schema import SCHEMA_FILE, schema_path, schema_text, shipped_schema_path

__all__ = ["main"]


def main(args: argparse.Namespace) -> int:
    text = schema_text()
    if args.check:
        stale = [path for path in _targets(args.check) if _read(path) != text]
        for path in stale:
            state = "is stale" if _read(path) is not None else "is missing or unreadable"
            fix = _write_command(args.check, path)
            print(f"{path} {state}; run `{fix}`", file=sys.stderr)
        if not stale:
            shown = ", ".join(str(p) for p in _targets(args.check))
            print(f"{shown}: up to date", file=sys.stderr)
        return 1 if stale else 0
    if args.write:
        if args.write is True and schema_path() is None:
            raise SweepspecError(
                Problem(
                    "the installed package's schema is written by its build; give a place "
                    "for a copy: sweepspec schema --write schemas/",
                    code="usage",
                ),
                exit_code=2,
            )
        for path in _targets(args.write):
            _write(path, text)
        return 0
    sys.stdout.write(text)
    return 0


def _targets(given: bool | str) -> list[Path]:
    """The copies that ``--check``/``--write`` act on: PATH, or the package's own (and the
    checkout's)."""
    if isinstance(given, str):  # a .json file, or a directory for sweepspec-v1.json
        path = Path(given)
        return [path if path.suffix == ".json" and not path.is_dir() else path / SCHEMA_FILE]
    checkout = schema_path()
    return [shipped_schema_path(), *([checkout] if checkout is not None else [])]


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None  # missing or unreadable: stale, and --write says why if it cannot write


def _write_command(given: bool | str, path: Path) -> str:
    if isinstance(given, str):
        return f"sweepspec schema --write {path}"
    if schema_path() is None:  # the installed package's own copy: a damaged installation
        return "pip install --force-reinstall sweepspec"
    return "sweepspec schema --write"


def _write(path: Path, text: str) -> None:
    if _read(path) == text:
        print(f"{path}: up to date", file=sys.stderr)
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise SweepspecError(
            Problem(
                f"cannot write the schema: {exc.strerror or exc}",
                location=Location(str(path)),
                code="io",
            )
        ) from None
    print(f"wrote {path}", file=sys.stderr)
