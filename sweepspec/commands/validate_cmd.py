"""``sweepspec validate [--changed] PATH...``: check spec files; no user code runs.

A directory is walked recursively; what cannot be read there (a directory that cannot be
listed, a broken link, a YAML name on a FIFO, socket or device) is reported, never read, and
makes the exit code 1. Files starting with ``_`` are bases for ``extends:``, checked through the
specs that extend them.

``--changed`` is for hooks that pass the files a commit changes (pre-commit): of those, the
sweep specs are checked, other YAML files (a workflow, ``.pre-commit-config.yaml``) are skipped,
and a changed base gets every spec under its directory that extends it (directly or through
other bases) checked.
"""

from __future__ import annotations

import argparse
import os
import re
import stat
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path

from sweepspec.errors import Location, Problem, SweepspecError, render_problems
from sweepspec.load import load_spec
from sweepspec.spec.read import read_file
from sweepspec.spec.root import Spec

__all__ = ["collect", "main", "specs_among", "validate_changed", "validate_paths", "walk"]

SUFFIXES = (".yaml", ".yml")
#: what ``--changed`` does not search for specs that extend a base: no spec lives there
PRUNED = ("node_modules", "__pycache__")
#: top-level keys only a spec has (``name`` and ``description`` are everybody's)
SPEC_KEYS = frozenset(Spec.model_fields) - {"name", "description", "extends"}
MAX_CHAIN = 10

_TOP_KEY = re.compile(r"""^(["']?)([A-Za-z_][\w-]*)\1[ \t]*:(?:[ \t]|$)(.*)$""", re.M)
_VALUE = re.compile(r"""^(?:(["'])(.*?)\1|([^#]*?))\s*(?:#.*)?$""")


def _unreadable(path: Path | str, message: str) -> Problem:
    return Problem(message, location=Location(str(path)), code="unreadable")


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _kind(mode: int) -> str:
    for test, kind in (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return kind
    return "not a regular file"


def walk(top: Path, problems: list[Problem], *, prune: bool = False) -> list[Path]:
    """The regular YAML files under the directory ``top``, sorted; directories linked to are
    walked once. What cannot be read becomes a problem in ``problems``. ``prune``: leave out
    hidden directories and ``PRUNED``."""
    found: list[Path] = []
    seen: set[tuple[int, int]] = set()
    stack = [top]
    while stack:
        directory = stack.pop()
        try:
            info = directory.stat()
            with os.scandir(directory) as listing:
                entries = list(listing)
        except OSError as exc:
            problems.append(_unreadable(directory, f"cannot list this directory: {_reason(exc)}"))
            continue
        if (info.st_dev, info.st_ino) in seen:
            continue
        seen.add((info.st_dev, info.st_ino))
        for entry in entries:
            path = Path(entry.path)
            yaml = path.suffix in SUFFIXES
            try:
                mode = entry.stat().st_mode  # through a link
            except OSError as exc:
                broken = isinstance(exc, FileNotFoundError) and entry.is_symlink()
                reason = "a broken symbolic link" if broken else f"cannot read: {_reason(exc)}"
                problems.append(_unreadable(path, reason))
                continue
            if stat.S_ISDIR(mode):
                hidden = entry.name.startswith(".") or entry.name in PRUNED
                if not (prune and hidden):
                    stack.append(path)
            elif yaml and stat.S_ISREG(mode):
                found.append(path)
            elif yaml:
                problems.append(
                    _unreadable(path, f"is {_kind(mode)}, not a regular file: not read")
                )
    return sorted(found)


def collect(paths: Iterable[str], *, bases: bool = False) -> tuple[list[Path], list[Problem]]:
    """The files to check under ``paths``: a file as given, a directory walked (leaving out
    bases, files starting with ``_``, unless ``bases``), and the problems of what cannot be
    read."""
    files: list[Path] = []
    problems: list[Problem] = []
    for raw in paths:
        path = Path(raw)
        try:
            mode = path.stat().st_mode
        except FileNotFoundError:
            if path.is_symlink():
                problems.append(_unreadable(raw, "a broken symbolic link"))
            else:
                problems.append(
                    Problem("no such file or directory", location=Location(raw), code="io")
                )
            continue
        except OSError as exc:
            problems.append(_unreadable(raw, f"cannot read: {_reason(exc)}"))
            continue
        if stat.S_ISDIR(mode):
            files += [p for p in walk(path, problems) if bases or not p.name.startswith("_")]
        else:
            files.append(path)  # a FIFO or device named here is refused, unread, by the reader
    return files, problems


def _check(files: Iterable[Path]) -> list[Problem]:
    problems: list[Problem] = []
    for file in files:
        try:
            load_spec(file)
        except SweepspecError as exc:
            if os.environ.get("SWEEPSPEC_DEBUG") == "1":
                traceback.print_exception(exc)  # SWEEPSPEC_DEBUG=1 shows every traceback
            problems += exc.problems
    return problems


def validate_paths(paths: list[str]) -> tuple[int, list[Problem]]:
    """(specs checked, problems): each problem once (a base's, found through every spec that
    extends it, too)."""
    files, problems = collect(paths)
    return len(files), list(dict.fromkeys(problems + _check(files)))


def validate_changed(paths: list[str]) -> tuple[int, int, list[Problem]]:
    """``--changed``: (specs checked, YAML files skipped as not specs, problems)."""
    files, problems = collect(paths, bases=True)
    specs, skipped = specs_among(files, problems)
    return len(specs), skipped, list(dict.fromkeys(problems + _check(specs)))


# ----------------------------------------------------------------------------- --changed


def _top_level(path: Path) -> dict[str, str] | None:
    """The top-level keys of the YAML file at ``path`` (each with its text when a scalar on the
    key's line), or None when it cannot be read. Read as lines, so that any YAML file (a tag, a
    second document) can be told from a spec without parsing it; a spec written as one flow
    mapping is read by the spec's reader."""
    try:
        text = read_file(path, Location(str(path))).decode("utf-8", "replace")
    except SweepspecError:
        return None
    keys: dict[str, str] = {}
    for match in _TOP_KEY.finditer(text):
        value = _VALUE.match(match.group(3).strip())
        keys.setdefault(match.group(2), (value.group(2) or value.group(3) or "") if value else "")
    if not keys and text.lstrip().startswith("{"):
        from sweepspec.spec.source import load_yaml

        try:
            data, _ = load_yaml(text, str(path))
        except SweepspecError:
            return None
        if isinstance(data, dict):
            keys = {str(k): v if isinstance(v, str) else "" for k, v in data.items()}
    return keys


def _base_of(path: Path, keys: dict[str, str]) -> Path | None:
    """The file that ``path``'s ``extends:`` names, resolved, if it names a YAML file."""
    target = keys.get("extends", "")
    if not target.endswith(SUFFIXES):
        return None
    return (path.parent / target).resolve()


class _Specs:
    """What ``--changed`` knows about files: their top-level keys, whether they are specs,
    and, per directory tree, which files extend which."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        self.keys: dict[Path, dict[str, str] | None] = {}
        self.trees: dict[Path, dict[Path, list[Path]]] = {}

    def top_level(self, path: Path) -> dict[str, str]:
        if path not in self.keys:
            self.keys[path] = _top_level(path)
        return self.keys[path] or {}

    def spec_like(self, path: Path, depth: int = 0) -> bool:
        """Keys only a spec has, or an ``extends:`` chain that reaches a file with some."""
        keys = self.top_level(path)
        if SPEC_KEYS & keys.keys():
            return True
        base = _base_of(path, keys)
        return base is not None and depth < MAX_CHAIN and self.spec_like(base, depth + 1)

    def extended_by(self, root: Path) -> dict[Path, list[Path]]:
        """For the tree under ``root``: each file named by an ``extends:`` -> the files there
        that name it."""
        if root not in self.trees:
            index: dict[Path, list[Path]] = {}
            for path in walk(root, self.problems, prune=True):
                base = _base_of(path, self.top_level(path))
                if base is not None:
                    index.setdefault(base, []).append(path)
            self.trees[root] = index
        return self.trees[root]

    def dependents(self, base: Path) -> list[Path]:
        """The specs under ``base``'s directory that extend it, directly or through bases."""
        index = self.extended_by(base.parent)
        found: list[Path] = []
        todo, seen = [base.resolve()], {base.resolve()}
        while todo:
            for path in index.get(todo.pop(), []):
                if path.resolve() not in seen:
                    seen.add(path.resolve())
                    todo.append(path.resolve())
                    found.append(path)
        return [p for p in found if not p.name.startswith("_")]


def specs_among(files: Iterable[Path], problems: list[Problem]) -> tuple[list[Path], int]:
    """The specs to check for a change of ``files``, and how many files were skipped as not
    specs. A spec (keys only a spec has, or ``extends:`` reaching such a file) is checked; a
    base (``_*.yaml``, or a file a spec extends) gets the specs that extend it checked; a spec
    without ``sweepspec:`` and ``extends:`` that nothing extends is checked (it lacks its
    version)."""
    known = _Specs(problems)
    specs: dict[Path, Path] = {}  # resolved -> as found
    skipped = 0
    for path in files:
        if path.suffix not in SUFFIXES:
            skipped += 1
            continue
        is_base = path.name.startswith("_")
        if not (is_base or known.spec_like(path)):
            skipped += 1
            continue
        dependents = known.dependents(path)
        keys = known.top_level(path)
        if not is_base and ("sweepspec" in keys or "extends" in keys or not dependents):
            specs.setdefault(path.resolve(), path)
        for spec in dependents:
            specs.setdefault(spec.resolve(), spec)
    return list(specs.values()), skipped


# ----------------------------------------------------------------------------- output


def _summary(count: int, problems: list[Problem], skipped: int | None) -> str:
    unread = {str(p.location) for p in problems if p.code == "unreadable" and p.location}
    bad = {p.location.file for p in problems if p.code != "unreadable" and p.location}
    if not problems:
        text = f"{count} spec(s) valid"
    else:
        text = f"{count} spec(s) checked, {len(bad)} with errors"
        if unread:
            text += f", {len(unread)} path(s) that could not be read"
    if skipped:
        text += f" ({skipped} file(s) that are not sweep specs skipped)"
    return text


def main(args: argparse.Namespace) -> int:
    changed = bool(getattr(args, "changed", False))
    skipped: int | None = None
    if changed:
        count, skipped, problems = validate_changed(args.paths)
    else:
        count, problems = validate_paths(args.paths)
    if args.format == "json":
        print(render_problems(problems, "json"))
    elif problems:
        print(render_problems(problems, args.format), file=sys.stdout)
    if args.format == "text" and (count or problems):
        print(_summary(count, problems, skipped), file=sys.stderr)
    if count == 0 and not problems:
        if changed:
            print(f"no sweep specs among the {skipped} file(s)", file=sys.stderr)
            return 0
        print("no spec files found", file=sys.stderr)
        return 1
    return 1 if problems else 0
