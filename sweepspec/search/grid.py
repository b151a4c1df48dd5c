"""Grids: the ``grid`` leaves of a space (every combination is tried, ``num_samples`` times
each) and the finite space that ``searcher: grid`` enumerates. Sizes are computed from the
spec, never by building the lists; the spec's checks refuse a grid of more than
``MAX_GRID_VALUES`` points, so what is enumerated here is bounded."""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sweepspec.search.params import SuggestSpec
from sweepspec.spec.root import Spec

__all__ = ["GridCounter", "grid_points", "grid_search_space", "grid_size"]


def grid_size(spec: Spec) -> int:
    """How many combinations the ``grid`` leaves make (1 without any)."""
    return math.prod(p.size or 1 for p in spec.grid_params())


def grid_points(spec: Spec) -> tuple[dict[str, Any], ...]:
    """Every combination of the ``grid`` leaves' values, in file order (empty without any)."""
    grids = [(p.path, list(getattr(p.node, "grid"))) for p in spec.grid_params()]  # noqa: B009 (mypy: node is a union)
    if not grids:
        return ()
    names = [name for name, _ in grids]
    return tuple(
        dict(zip(names, combo, strict=True))
        for combo in itertools.product(*(values for _, values in grids))
    )


def grid_search_space(suggest: Mapping[str, SuggestSpec]) -> dict[str, list[Any]]:
    """Every value of each parameter, for Optuna's ``GridSampler`` (``searcher: grid``)."""
    return {
        path: s.kwargs["choices"] if s.method == "categorical" else _values(s)
        for path, s in suggest.items()
    }


def _values(s: SuggestSpec) -> list[Any]:
    low, high = s.kwargs["low"], s.kwargs["high"]
    step = s.kwargs.get("step") or 1
    if s.method == "int":
        return list(range(low, high + 1, step))
    n = int((high - low) / step + 1e-9)
    return [low + i * step for i in range(n + 1)]


class GridCounter:
    """How often each grid point has been run (or is running), to hand out the least-run one
    next: every point runs ``num_samples`` times, evenly, whatever the order of trials."""

    def __init__(self, points: Sequence[Mapping[str, Any]]) -> None:
        self.points = [dict(p) for p in points]
        self._names = sorted(self.points[0]) if self.points else []
        self._index = {self.key(p): i for i, p in enumerate(self.points)}
        self.counts = [0] * len(self.points)

    def key(self, params: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(json.dumps(params.get(k), sort_keys=True, default=str) for k in self._names)

    def add(self, params: Mapping[str, Any]) -> None:
        """Count a trial with these (decoded) params, if they hold a grid point."""
        i = self._index.get(self.key(params))
        if i is not None:
            self.counts[i] += 1

    def copy(self) -> GridCounter:
        out = GridCounter.__new__(GridCounter)
        out.points, out._names, out._index = self.points, self._names, self._index
        out.counts = list(self.counts)
        return out

    def add_all(self, many: Iterable[Mapping[str, Any]]) -> GridCounter:
        for params in many:
            self.add(params)
        return self

    def least(self) -> dict[str, Any]:
        """The grid point run least often so far (the first of them)."""
        return self.points[self.counts.index(min(self.counts))]
