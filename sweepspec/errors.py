"""User-facing errors: every mistake a user can make is a :class:`SweepspecError`.

A :class:`Problem` says *where* (file, line, column, dotted key path) and *what must hold*.
Anything that is not a ``SweepspecError`` is a bug in sweepspec and is reported as such by the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

__all__ = ["Finding", "KeyPath", "Location", "Problem", "SweepspecError", "render_problems"]

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


def _github_escape(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


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
                props.append(f"file={p.location.file}")
                if p.location.line > 0:
                    props.append(f"line={p.location.line}")
                    props.append(f"col={p.location.col}")
            msg = f"{p.path}: {p.message}" if p.path else p.message
            head = "::error " + ",".join(props) if props else "::error"
            lines.append(f"{head}::{_github_escape(msg)}")
        return "\n".join(lines)
    return "\n".join(p.render() for p in items)
