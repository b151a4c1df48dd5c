"""A preview of the configs a spec's sweep tries (``sweepspec plan``): its ``try_first``
configs, then random samples drawn without a searcher, each with the constraints it breaks.
Seeded by the spec's searcher seed; pure, nothing runs."""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from sweepspec.search.space import SpaceModel, flatten_config, sample_value
from sweepspec.spec.root import Spec

__all__ = ["MAX_TRY_FIRST", "PREVIEW", "preview_configs"]

PREVIEW = 5  # random configs shown after the try_first ones
MAX_TRY_FIRST = 20  # try_first configs shown at most


def preview_configs(spec: Spec, samples: int = PREVIEW) -> list[dict[str, Any]]:
    """The ``try_first`` configs (their missing parameters sampled), then ``samples`` random
    ones; each with the constraints it breaks (a run never launches such a config)."""
    model = SpaceModel.from_spec(spec)
    rng = random.Random(spec.searcher.seed or 0)
    given = [("try_first", flatten_config(e)) for e in spec.try_first[:MAX_TRY_FIRST]]
    rows = []
    for source, fixed in [*given, *(("sample", {}) for _ in range(samples))]:
        values = _sample(model, rng, fixed)
        violated = model.violated({**model.fixed_values(values), **values})
        rows.append(
            {
                "source": source,
                "params": values,
                "config": model.build_config(values),
                "feasible": not violated,
                "violated": violated,
            }
        )
    return rows


def _sample(model: SpaceModel, rng: random.Random, fixed: Mapping[str, Any]) -> dict[str, Any]:
    """Values of the active sampled parameters in dependency order, ``fixed`` ones as given."""
    values: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for p in model.params:
        if not model.is_active(p, context):
            continue
        value = fixed[p.path] if p.path in fixed else sample_value(p, rng)
        context[p.path] = value
        if not p.is_fixed:
            values[p.path] = value
    return values
