"""User-facing errors: every mistake a user can make is a :class:`SweepspecError`.

A :class:`Problem` says *where* (file, line, column, dotted key path) and *what must hold*.
Anything that is not a ``SweepspecError`` is a bug in sweepspec and is reported as such by the CLI.
"""

from __future__ import annotations

import errno
import json
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = [
    "DISK_FULL_ERRNOS",
    "DISK_FULL_HINT",
    "Finding",
    "KeyPath",
    "Location",
    "Problem",
    "SweepspecError",
    "io_problem",
    "printable",
    "render_problems",
]

#: A key path in a spec, e.g. ``("space", "lr", "loguniform")`` or ``("constraints", 0)``.
KeyPath = tuple[str | int, ...]


class Finding(NamedTuple):
    """A problem found on a Spec, before it is located in the file: the key path it is about,
    what must hold, and a stable code. :mod:`sweepspec.load` locates it as a :class:`Problem`."""

    path: KeyPath
    message: str
    code: str = "invalid"


@dataclass(frozen=True, order=True)
class Location:
    """A place in a source: a file (or a command-line override) and a 1-based line and column."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


#: What a write gets from a full disk (or a full quota).
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
DISK_FULL_HINT = (
    "the disk is full: the run stopped, and the trials in flight run again when it resumes; "
    "free space, then run the same command again"
)


def io_problem(message: str, exc: OSError, code: str = "io") -> Problem:
    """A failed read or write of the run's files: ``message`` and the system's reason; a full
    disk says what to do (code ``disk-full``)."""
    reason = exc.strerror or str(exc)
    if exc.errno in DISK_FULL_ERRNOS:
        return Problem(f"{message}: {reason}; {DISK_FULL_HINT}", code="disk-full")
    return Problem(f"{message}: {reason}", code=code)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec (or a run): a message, the key path and where it is."""

    message: str
    path: str = ""
    location: Location | None = None
    code: str = "invalid"
    _sort: tuple[str, int, int] = field(default=("", 0, 0), compare=False, repr=False)

    def render(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)

    def sort_key(self) -> tuple[str, int, int, str]:
        loc = self.location or Location("")
        return (loc.file, loc.line, loc.col, self.path)

    def to_json(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc and loc.line > 0 else None,
            "col": loc.col if loc and loc.line > 0 else None,
            "path": self.path,
            "code": self.code,
            "message": self.message,
        }


class SweepspecError(Exception):
    """A user's mistake: bad input, a refused run. Printed without a traceback, exit 1."""

    def __init__(self, problems: Problem | str | Sequence[Problem], *, exit_code: int = 1) -> None:
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = sorted(problems, key=Problem.sort_key)
        self.exit_code = exit_code
        super().__init__("\n".join(p.render() for p in self.problems))

    def located(self, locate: Callable[[KeyPath], Location]) -> SweepspecError:
        """The same error with every problem that names a key path but no place located by
        ``locate`` (a spec's source map): a problem found while running points into the file."""
        out = []
        for problem in self.problems:
            if problem.location is None and problem.path:
                parts = tuple(int(s) if s.isdigit() else s for s in problem.path.split("."))
                where = locate(parts)
                problem = Problem(problem.message, problem.path, where, problem.code)  # noqa: PLW2901
            out.append(problem)
        return SweepspecError(out, exit_code=self.exit_code)


def printable(text: str, *, newlines: bool = False) -> str:
    """``text`` on one line: control characters (a newline in a YAML key, an escape sequence
    in a value) written as ``\\n``, ``\\x1b``..., so a message can never print a second,
    forged line or move the cursor. ``newlines``: keep line breaks (a GitHub annotation's
    message escapes them itself)."""
    out = []
    for ch in text:
        if newlines and ch in "\n\r":
            out.append(ch)
        elif ch in "\n\r\t":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


def _github_data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's toolkit does (``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _github_property(text: str) -> str:
    """A workflow command's property value (``file=``, ``title=``), escaped as GitHub's
    toolkit does (``escapeProperty``): a path holding ``,`` or ``:`` stays one property."""
    return _github_data(text).replace(":", "%3A").replace(",", "%2C")


def render_problems(problems: Iterable[Problem], fmt: str = "text") -> str:
    """Render problems as ``text`` (one per line), ``json`` (a list) or ``github`` annotations."""
    items = sorted(problems, key=Problem.sort_key)
    if fmt == "json":
        return json.dumps([p.to_json() for p in items], indent=2)
    if fmt == "github":
        lines = []
        for p in items:
            props = []
            if p.location is not None:
                props.append(f"file={_github_property(p.location.file)}")
                if p.location.line > 0:
                    props.append(f"line={p.location.line}")
                    props.append(f"col={p.location.col}")
            title = f"sweepspec: {p.path}" if p.path else f"sweepspec: {p.code}"
            props.append(f"title={_github_property(printable(title))}")
            msg = f"{p.path}: {p.message}" if p.path else p.message
            body = _github_data(printable(msg, newlines=True))
            lines.append(f"::error {','.join(props)}::{body}")
        return "\n".join(lines)
    return "\n".join(printable(p.render()) for p in items)
