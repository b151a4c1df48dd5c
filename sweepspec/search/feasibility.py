"""Sample the space (seeded, nothing runs) and measure the share that satisfies the
constraints; a spec none of whose samples does is an error. The same samples evaluate every
``when`` condition and ``derived`` value, so one that cannot be evaluated (``'adam' > 1``) is a
validate-time error, not a crash in the middle of a run."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Mapping
from typing import Any

from sweepspec.errors import Problem, SweepspecError, printable
from sweepspec.search.space import SpaceModel, sample_random
from sweepspec.spec.expr import ExprEvalError, MissingName
from sweepspec.spec.root import Spec
from sweepspec.spec.source import SourceMap

__all__ = [
    "MAX_REJECTIONS",
    "SAMPLES",
    "WORK",
    "check_feasibility",
    "feasible_share",
    "samples_for",
    "too_many_rejections",
]

SAMPLES = 1000
#: The most expression nodes a feasibility sample evaluates in all: a spec of many long
#: constraints gets fewer samples (at least MIN_SAMPLES), not minutes of sampling. Work, not
#: time, bounds it, so the answer is the same on a slow machine and a fast one.
WORK = 2_000_000
MIN_SAMPLES = 50
#: A running searcher gives up after this many proposals in a row that break the constraints.
MAX_REJECTIONS = 1000


def too_many_rejections() -> SweepspecError:
    """The error of a searcher that proposed MAX_REJECTIONS infeasible configs in a row."""
    return SweepspecError(
        Problem(
            f"the searcher proposed {MAX_REJECTIONS} configs in a row that break the "
            "constraints; loosen them or narrow the space",
            "constraints",
            code="infeasible",
        )
    )


def feasible_share(spec: Spec, samples: int = SAMPLES, seed: int = 0) -> tuple[float, list[float]]:
    """(share of samples satisfying every constraint, share satisfying each constraint).

    Raises ExprEvalError with ``.spec_path`` set (the key path of the condition, derived value
    or constraint) when an expression cannot be evaluated."""
    model = _relevant_part(SpaceModel.from_spec(spec))
    samples = samples_for(model, samples)
    rng = random.Random(seed)
    ok = 0
    each = [0] * len(model.constraints)
    for _ in range(samples):
        values = model.with_derived({**model.fixed_values({}), **sample_random(model, rng)})
        good = True
        for i, expr in enumerate(model.constraints):
            try:
                holds = bool(expr.evaluate(values))
            except MissingName:
                holds = True
            except ExprEvalError as exc:
                exc.spec_path = ("constraints", i)
                raise
            each[i] += holds
            good = good and holds
        ok += good
    return ok / samples, [n / samples for n in each]


def samples_for(model: SpaceModel, wanted: int = SAMPLES) -> int:
    """How many samples fit :data:`WORK`: each evaluates every constraint, condition and
    derived value once (at most their size in nodes)."""
    cost = sum(e.size for e in model.constraints)
    cost += sum(e.size for _, e in model.derived) + sum(e.size for e in model.conditions.values())
    return max(min(wanted, MIN_SAMPLES), min(wanted, WORK // max(cost, 1)))


def _relevant_part(model: SpaceModel) -> SpaceModel:
    """The model without the parameters that no constraint, condition or derived value can
    see: their values change neither the share nor whether an expression evaluates, so
    sampling them would only cost time (most of validate's, on a large space)."""
    derived = dict(model.derived)
    todo: list[str] = [n for e in (*model.constraints, *derived.values()) for n in e.names()]
    for path, cond in model.conditions.items():
        todo += [path, *cond.names()]  # a condition must be evaluated, on what it refers to
    relevant: set[str] = set()
    while todo:
        name = todo.pop()
        if name in relevant:
            continue
        relevant.add(name)
        if name in derived:
            todo += derived[name].names()
        if name in model.conditions:
            todo += model.conditions[name].names()
    return dataclasses.replace(model, params=tuple(p for p in model.params if p.path in relevant))


def evaluation_problem(exc: ExprEvalError, values: Mapping[str, Any] | None = None) -> Problem:
    """The problem of a condition, derived value or constraint that cannot be evaluated (at
    ``values``, a point the searcher proposed), naming its key path (located by the caller)."""
    path = exc.spec_path or ("constraints", 0)
    at = ""
    if values is not None:
        shown = ", ".join(f"{k}={v!r}" for k, v in values.items())
        at = f" at {printable(shown)[:300]}"
    return Problem(
        f"cannot be evaluated{at}: {exc.message}",
        ".".join(str(p) for p in path),
        None,
        "expression",
    )


def check_feasibility(spec: Spec, source: SourceMap) -> float | None:
    """The feasible share, or None without constraints; raises when it is zero or when a
    condition, derived value or constraint cannot be evaluated."""
    has_when = any(p.when for p in spec.params())
    if not (spec.constraints or spec.derived or has_when):
        return None
    try:
        share, each = feasible_share(spec)
    except ExprEvalError as exc:
        raise SweepspecError(evaluation_problem(exc)).located(source.locate) from None
    if not spec.constraints:
        return None
    if share == 0.0:
        n = samples_for(_relevant_part(SpaceModel.from_spec(spec)))
        worst = min(range(len(each)), key=lambda i: each[i])
        detail = ", ".join(f"#{i}: {s:.0%}" for i, s in enumerate(each))
        raise SweepspecError(
            Problem(
                f"no sampled config satisfies all constraints (0 of {n}; alone, {detail}); "
                f"constraint #{worst} is the tightest",
                f"constraints.{worst}",
                source.locate(("constraints", worst)),
                "infeasible",
            )
        )
    return share
