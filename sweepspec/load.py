"""Load a spec, the front door of every command: the spec stage reads the text into a Spec
(:mod:`sweepspec.spec.read`), then the spec's cross-field checks
(:mod:`sweepspec.spec.checks`) and those of the backend it names (what that backend cannot
do, :mod:`sweepspec.backends`) are reported together, all located in the file, and the space
is sampled to check that its constraints can be met (:mod:`sweepspec.search.feasibility`).

No user code runs and no heavy library is imported."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from sweepspec.backends import backend_for
from sweepspec.errors import Location, Problem, SweepspecError
from sweepspec.spec.checks import check_spec
from sweepspec.spec.read import LoadedSpec, read_file, read_text

__all__ = ["LoadedSpec", "load_spec", "load_text"]


def load_spec(
    path: str | Path, overrides: Sequence[str] = (), *, feasibility: bool = True
) -> LoadedSpec:
    """Load, merge, resolve and check the spec file at ``path``."""
    path = Path(path)
    raw = read_file(path, Location(str(path)))
    return load_text(raw, str(path), overrides, spec_path=path, feasibility=feasibility)


def load_text(
    text: str | bytes,
    file: str = "<string>",
    overrides: Sequence[str] = (),
    *,
    spec_path: Path | None = None,
    feasibility: bool = True,
) -> LoadedSpec:
    """Like :func:`load_spec` for text already in memory (``file`` names it in errors)."""
    loaded = read_text(text, file, overrides, spec_path=spec_path)
    spec, source = loaded.spec, loaded.source
    problems = check_spec(spec, source)
    problems += [
        Problem(f.message, ".".join(str(p) for p in f.path), source.locate(f.path), f.code)
        for f in backend_for(spec).check(spec)
    ]
    if problems:
        raise SweepspecError(problems)
    if not feasibility:
        return loaded
    from sweepspec.search.feasibility import check_feasibility

    return dataclasses.replace(loaded, feasible_share=check_feasibility(spec, source))
