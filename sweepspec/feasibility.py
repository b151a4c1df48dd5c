"""Sample the space (seeded, nothing runs) and measure the share that satisfies the
constraints; a spec none of whose samples does is an error."""

from __future__ import annotations

import random

from sweepspec.errors import Problem, SweepspecError
from sweepspec.expr import ExprEvalError, MissingName
from sweepspec.space import SpaceModel, sample_random
from sweepspec.spec.root import Spec
from sweepspec.yamlsrc import SourceMap

__all__ = ["SAMPLES", "check_feasibility", "feasible_share"]

SAMPLES = 1000


def feasible_share(spec: Spec, samples: int = SAMPLES, seed: int = 0) -> tuple[float, list[float]]:
    """(share of samples satisfying every constraint, share satisfying each constraint).

    Raises ExprEvalError with ``.index`` set when a constraint cannot be evaluated."""
    model = SpaceModel.from_spec(spec)
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
                exc.index = i  # type: ignore[attr-defined]
                raise
            each[i] += holds
            good = good and holds
        ok += good
    return ok / samples, [n / samples for n in each]


def check_feasibility(spec: Spec, source: SourceMap) -> float | None:
    """The feasible share, or None without constraints; raises when it is zero."""
    if not spec.constraints:
        return None
    try:
        share, each = feasible_share(spec)
    except ExprEvalError as exc:
        index = getattr(exc, "index", 0)
        path = ("constraints", index)
        raise SweepspecError(
            Problem(
                f"cannot be evaluated: {exc.message}",
                f"constraints.{index}",
                source.locate(path),
                "expression",
            )
        ) from None
    if share == 0.0:
        worst = min(range(len(each)), key=lambda i: each[i])
        detail = ", ".join(f"#{i}: {s:.0%}" for i, s in enumerate(each))
        raise SweepspecError(
            Problem(
                f"no sampled config satisfies all constraints (0 of {SAMPLES}; alone, {detail}); "
                f"constraint #{worst} is the tightest",
                f"constraints.{worst}",
                source.locate(("constraints", worst)),
                "infeasible",
            )
        )
    return share
