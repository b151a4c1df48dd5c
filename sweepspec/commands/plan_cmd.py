"""``sweepspec plan SPEC``: the resolved spec, what it compiles to, sampled configs, the share
that satisfies the constraints, and the compute budget. Runs nothing."""

from __future__ import annotations

import argparse
import random

import yaml

from sweepspec.backends import backend_for
from sweepspec.load import LoadedSpec, load_spec
from sweepspec.search.feasibility import feasible_share
from sweepspec.search.plan import trial_count
from sweepspec.search.space import SpaceModel, sample_random
from sweepspec.units import format_duration

__all__ = ["PREVIEW", "main"]

PREVIEW = 5


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, args.overrides, feasibility=False)
    spec = loaded.spec
    print("# resolved spec")
    print(yaml.safe_dump(spec.dump(), sort_keys=False).rstrip())
    print("\n# compiles to")
    for line in backend_for(spec).describe(loaded):
        print(f"  {line}")
    model = SpaceModel.from_spec(spec)
    rng = random.Random(spec.searcher.seed or 0)
    print(f"\n# {PREVIEW} sampled configs (random, before the searcher learns)")
    for _ in range(PREVIEW):
        values = sample_random(model, rng)
        print(f"  - {model.build_config(values)}")
    if spec.constraints:
        share, each = feasible_share(spec)
        parts = ", ".join(f"#{i} {s:.0%}" for i, s in enumerate(each))
        print(f"\n# constraints: {share:.1%} of 1000 samples satisfy all ({parts})")
    print("\n# budget")
    for line in _budget(loaded):
        print(f"  {line}")
    return 0


def _budget(loaded: LoadedSpec) -> list[str]:
    spec = loaded.spec
    total = trial_count(spec)
    per = spec.resources.per_trial
    lines = [f"{total} trials x {per.cpu:g} CPU" + (f" + {per.gpu:g} GPU" if per.gpu else "")]
    timeout = spec.trials.timeout
    if timeout:
        hours = total * timeout / 3600
        lines.append(
            f"at most {hours:.1f} trial-hours ({total} x timeout "
            f"{format_duration(timeout)})"
            + (f", {hours * per.gpu:.1f} GPU-hours" if per.gpu else "")
        )
    else:
        lines.append("no trials.timeout: the trial-hours are unbounded until trials run")
    if spec.stop.sweep.time_budget:
        lines.append(f"time budget {format_duration(spec.stop.sweep.time_budget)}")
    return lines
