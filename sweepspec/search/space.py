"""The evaluated view of a spec's space: parameters in dependency order, parsed ``when``
conditions, ``derived`` values and ``constraints``, and how a trial's config is assembled.

Backends share this module so that conditions, derived values and constraints mean the same
thing everywhere. It imports no backend.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sweepspec.spec.expr import Expr, ExprEvalError, MissingName, parse_expr
from sweepspec.spec.root import Spec
from sweepspec.spec.space import (
    ChoiceDist,
    GridDist,
    IntDist,
    LogUniformDist,
    Param,
    UniformDist,
)

__all__ = ["SpaceModel", "flatten_config", "sample_random", "set_path"]


@dataclass(frozen=True)
class SpaceModel:
    """Parameters (in an order where every ``when`` comes after what it refers to) and the
    parsed expressions. Build it from a valid spec with :meth:`from_spec`."""

    params: tuple[Param, ...]
    conditions: Mapping[str, Expr]
    derived: tuple[tuple[str, Expr], ...]
    constraints: tuple[Expr, ...]
    base_config: Mapping[str, Any]

    @classmethod
    def from_spec(cls, spec: Spec) -> SpaceModel:
        params = spec.params()
        conditions = {p.path: parse_expr(p.when) for p in params if p.when}
        ordered = _dependency_order(params, conditions)
        derived = tuple((k, parse_expr(v)) for k, v in spec.derived.items())
        constraints = tuple(parse_expr(c) for c in spec.constraints)
        return cls(tuple(ordered), conditions, derived, constraints, spec.objective.config)

    @property
    def sampled(self) -> tuple[Param, ...]:
        return tuple(p for p in self.params if not p.is_fixed)

    def is_active(self, param: Param, values: Mapping[str, Any]) -> bool:
        """Whether ``param`` exists given the values chosen so far (its ``when`` holds)."""
        cond = self.conditions.get(param.path)
        if cond is None:
            return True
        try:
            return bool(cond.evaluate(values))
        except MissingName:
            return False  # it depends on a parameter that is itself inactive
        except ExprEvalError as exc:
            exc.spec_path = ("space", *param.path.split("."), "when")
            raise

    def with_derived(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """``values`` plus every derived value that can be computed from them."""
        out = dict(values)
        for path, expr in self.derived:
            try:
                out[path] = expr.evaluate(out)
            except MissingName:
                continue
            except ExprEvalError as exc:
                exc.spec_path = ("derived", path)
                raise
        return out

    def violated(self, values: Mapping[str, Any]) -> list[int]:
        """Indexes of the constraints that ``values`` (with derived ones) break.

        A constraint that mentions an inactive parameter does not apply."""
        full = self.with_derived(values)
        bad = []
        for i, expr in enumerate(self.constraints):
            try:
                if not expr.evaluate(full):
                    bad.append(i)
            except MissingName:
                continue
        return bad

    def fixed_values(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The active fixed leaves of the space, given sampled ``values``."""
        out: dict[str, Any] = {}
        for p in self.params:
            if p.is_fixed and self.is_active(p, {**values, **out}):
                out[p.path] = copy.deepcopy(p.fixed_value)
        return out

    def build_config(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The nested config a trial receives: ``objective.config`` with the fixed, sampled
        and derived values set at their paths."""
        config: dict[str, Any] = copy.deepcopy(dict(self.base_config))
        flat = {**self.fixed_values(values), **values}
        for path, value in self.with_derived(flat).items():
            set_path(config, path, value)
        return config


def set_path(config: dict[str, Any], path: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested dict, creating levels as needed."""
    *parents, leaf = path.split(".")
    node = config
    for key in parents:
        child = node.get(key)
        if not isinstance(child, dict):
            child = {}
            node[key] = child
        node = child
    node[leaf] = value


def flatten_config(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{'a': {'b': 1}}`` -> ``{'a.b': 1}`` (lists stay values)."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten_config(value, f"{path}."))
        else:
            out[path] = value
    return out


def _dependency_order(params: list[Param], conditions: Mapping[str, Expr]) -> list[Param]:
    by_path = {p.path: p for p in params}
    done: dict[str, Param] = {}
    visiting: set[str] = set()

    def visit(p: Param) -> None:
        if p.path in done or p.path in visiting:
            return  # cycles are rejected by the checks before this runs
        visiting.add(p.path)
        cond = conditions.get(p.path)
        for name in sorted(cond.names()) if cond else ():
            if name in by_path:
                visit(by_path[name])
        visiting.discard(p.path)
        done[p.path] = p

    for p in params:
        visit(p)
    return list(done.values())


def sample_value(param: Param, rng: random.Random) -> Any:
    """One random draw from a parameter's distribution (no searcher; for previews)."""
    node = param.node
    if isinstance(node, UniformDist):
        low, high = node.uniform
        if node.log:
            return math.exp(rng.uniform(math.log(low), math.log(high)))
        if node.step:
            n = math.floor((high - low) / node.step + 1e-9)
            return low + rng.randint(0, n) * node.step
        return rng.uniform(low, high)
    if isinstance(node, LogUniformDist):
        low, high = node.loguniform
        return math.exp(rng.uniform(math.log(low), math.log(high)))
    if isinstance(node, IntDist):
        low, high = node.int
        if node.log:
            x = math.exp(rng.uniform(math.log(low - 0.5 + 1e-9), math.log(high + 0.5)))
            return min(high, max(low, round(x)))
        step = node.step or 1
        return low + step * rng.randint(0, (high - low) // step)
    if isinstance(node, ChoiceDist):
        return _copy(rng.choice(node.choice))
    if isinstance(node, GridDist):
        return _copy(rng.choice(node.grid))
    return copy.deepcopy(param.fixed_value)


def _copy(value: Any) -> Any:
    """A value of its own for the caller (lists and mappings are mutable; scalars are not)."""
    return (
        value
        if isinstance(value, str | int | float | bool) or value is None
        else copy.deepcopy(value)
    )


def sample_random(model: SpaceModel, rng: random.Random) -> dict[str, Any]:
    """Sampled values of the active parameters (fixed ones excluded), in dependency order."""
    values: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for p in model.params:
        if not model.is_active(p, context):
            continue
        value = sample_value(p, rng)
        context[p.path] = value
        if not p.is_fixed:
            values[p.path] = value
    return values


__all__ += ["ExprEvalError", "sample_value"]
