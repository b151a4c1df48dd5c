"""``sweepspec plan SPEC``: the resolved spec, what it compiles to, sampled configs, the share
that satisfies the constraints, and the compute budget. Runs nothing."""

from __future__ import annotations

import argparse
import random

import yaml

from sweepspec.feasibility import feasible_share
from sweepspec.load import load_spec
from sweepspec.space import SpaceModel, sample_random
from sweepspec.units import format_duration

__all__ = ["PREVIEW", "main"]

PREVIEW = 5
RAY_SHORT_TRIAL_S = 10.0


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, args.overrides, feasibility=False)
    spec = loaded.spec
    print("# resolved spec")
    print(yaml.safe_dump(spec.dump(), sort_keys=False).rstrip())
    print("\n# compiles to")
    for line in _compiled(loaded):
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


def _compiled(loaded: object) -> list[str]:
    spec = loaded.spec  # type: ignore[attr-defined]
    if spec.backend.type == "ray":
        from sweepspec.compile.ray_backend import describe_ray

        return list(describe_ray(spec))
    from sweepspec.compile.optuna_backend import compile_optuna
    from sweepspec.run.optuna_session import concurrency_for

    plan = compile_optuna(spec)
    try:
        workers, _ = concurrency_for(spec)
        conc = f"{workers} worker process(es)"
    except Exception as exc:  # e.g. GPUs asked for but none here: plan still shows the rest
        conc = f"cannot run here: {exc}"
    kwargs = "".join(f", {k}={v!r}" for k, v in plan.sampler_kwargs.items())
    pruner_args = ", ".join(f"{k}={v!r}" for k, v in plan.pruner_kwargs.items())
    return [
        f"optuna study {plan.study_name!r}, directions {plan.directions}",
        f"sampler optuna.samplers.{plan.sampler}(seed={spec.searcher.seed}{kwargs})",
        f"pruner optuna.pruners.{plan.pruner}({pruner_args})",
        f"{len(plan.suggest)} sampled parameter(s), {len(plan.grid_points) or 1} grid point(s)",
        f"{plan.total_trials} trials, {conc}",
    ]


def _budget(loaded: object) -> list[str]:
    spec = loaded.spec  # type: ignore[attr-defined]
    from sweepspec.compile.optuna_backend import compile_optuna

    total = compile_optuna(spec).total_trials
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
    if spec.backend.type == "ray" and timeout and timeout < RAY_SHORT_TRIAL_S:
        lines.append(
            f"warning: trials of under {RAY_SHORT_TRIAL_S:g} s rarely pay for Ray's "
            "start-up and per-trial overhead; backend: {type: optuna} runs them faster"
        )
    return lines
