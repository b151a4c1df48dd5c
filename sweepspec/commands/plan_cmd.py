"""``sweepspec plan SPEC``: the resolved spec, what it compiles to, a table of sampled configs
(``try_first`` ones first, those that break a constraint marked), the share of samples that
satisfies the constraints, the scheduler's expected saving and the compute budget. Runs
nothing.

The saving of ASHA and HyperBand is rung arithmetic: at every rung ``1/reduction_factor``
of the trials that reached it go on, so a trial's expected length is the sum over rungs of
the share that gets there times the rung's length, against ``max_t`` for every trial under
FIFO. It is what the scheduler does when results rank trials at random; real results only
decide *which* trials go on, not how many."""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import yaml

from sweepspec.backends import backend_for
from sweepspec.errors import SweepspecError
from sweepspec.load import LoadedSpec, load_spec
from sweepspec.search.feasibility import evaluation_problem, feasible_share
from sweepspec.search.plan import trial_count
from sweepspec.search.space import SpaceModel, flatten_config, sample_value
from sweepspec.spec.expr import ExprEvalError
from sweepspec.spec.root import Spec
from sweepspec.spec.scheduler import AshaScheduler, HyperbandScheduler
from sweepspec.units import format_duration

__all__ = ["PREVIEW", "Saving", "main", "preview_configs", "scheduler_saving"]

PREVIEW = 5  # random configs shown after the try_first ones
MAX_TRY_FIRST = 20  # try_first configs shown at most


# -- sampled configs ---------------------------------------------------------------------------


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


# -- the scheduler's saving --------------------------------------------------------------------


@dataclass(frozen=True)
class Saving:
    """A trial's expected length under an early-stopping scheduler, against FIFO."""

    scheduler: str
    time_attr: str
    max_t: int
    expected_t: float  # per trial, in time_attr units
    rungs: tuple[float, ...]  # where trials may be stopped (of the first bracket)

    @property
    def factor(self) -> float:
        """How many times less work than FIFO (``max_t`` for every trial)."""
        return self.max_t / self.expected_t if self.expected_t > 0 else 1.0


def _halving(start: float, max_t: int, rf: float) -> tuple[float, tuple[float, ...]]:
    """(expected length, rungs) of a trial in successive halving that starts its rungs at
    ``start``: it runs to the first rung, and past rung k with probability rf**-(k+1)."""
    rungs: list[float] = []
    r = float(start)
    while r < max_t and len(rungs) < 64:
        rungs.append(r)
        r *= rf
    if not rungs:
        return float(max_t), ()
    ends = [*rungs[1:], float(max_t)]
    expected = rungs[0] + sum(rf ** -(k + 1) * (end - rungs[k]) for k, end in enumerate(ends))
    return expected, tuple(rungs)


def _hyperband(max_t: int, rf: float) -> tuple[float, tuple[float, ...]]:
    """HyperBand's (expected length, rungs of its most aggressive bracket) over one full
    round of brackets (Li et al.: bracket s starts n = ceil((s_max+1)/(s+1) * rf**s) trials
    at max_t * rf**-s; each rung keeps 1/rf of them, and kept trials go on training)."""
    s_max = max(0, math.floor(math.log(max_t) / math.log(rf) + 1e-9))
    work = trials = 0.0
    first: tuple[float, ...] = ()
    for s in range(s_max, -1, -1):
        n = math.ceil((s_max + 1) / (s + 1) * rf**s)
        r0 = max_t * rf**-s
        done, reached = 0.0, float(n)
        rungs = []
        for i in range(s + 1):
            r = min(float(max_t), r0 * rf**i)
            work += reached * (r - done)
            rungs.append(r)
            done, reached = r, max(1.0, math.floor(n * rf ** -(i + 1)))
        trials += n
        if not first:
            first = tuple(rungs[:-1])
    return work / trials, first


def scheduler_saving(spec: Spec) -> Saving | None:
    """The expected saving of the spec's ASHA or HyperBand scheduler; None for the others
    (FIFO saves nothing, the median rule's saving depends on the results, PBT runs every
    trial to its end)."""
    sched = spec.scheduler
    if isinstance(sched, AshaScheduler):
        rf = sched.reduction_factor  # bracket b starts its rungs at grace_period * rf**b
        runs = [
            _halving(sched.grace_period * rf**b, sched.max_t, rf) for b in range(sched.brackets)
        ]
        expected = sum(e for e, _ in runs) / len(runs)
        return Saving("asha", sched.time_attr, sched.max_t, expected, runs[0][1])
    if isinstance(sched, HyperbandScheduler):
        expected, rungs = _hyperband(sched.max_t, sched.reduction_factor)
        return Saving("hyperband", sched.time_attr, sched.max_t, expected, rungs)
    return None


# -- the budget --------------------------------------------------------------------------------


def budget(spec: Spec, saving: Saving | None) -> dict[str, Any]:
    """Trials, resources, worst-case trial-hours and GPU-hours (every trial runs to its
    timeout), and the expected ones under the scheduler (a trial's time taken as growing
    with its steps)."""
    total = trial_count(spec)
    per = spec.resources.per_trial
    timeout = spec.trials.timeout
    worst = total * timeout / 3600 if timeout else None
    share = 1 / saving.factor if saving is not None else None
    return {
        "trials": total,
        "cpu_per_trial": per.cpu,
        "gpu_per_trial": per.gpu,
        "timeout_s": timeout,
        "trial_hours_max": worst,
        "gpu_hours_max": worst * per.gpu if worst is not None else None,
        "trial_hours_expected": worst * share if worst is not None and share else None,
        "gpu_hours_expected": worst * share * per.gpu if worst is not None and share else None,
        "time_budget_s": spec.stop.sweep.time_budget,
    }


def _budget_lines(data: Mapping[str, Any], saving: Saving | None) -> list[str]:
    total, cpu, gpu = data["trials"], data["cpu_per_trial"], data["gpu_per_trial"]
    lines = [f"{total} trials x {cpu:g} CPU" + (f" + {gpu:g} GPU" if gpu else "")]
    if data["trial_hours_max"] is not None:
        hours = data["trial_hours_max"]
        line = (
            f"at most {hours:.1f} trial-hours ({total} x timeout "
            f"{format_duration(data['timeout_s'])})"
        )
        lines.append(line + (f", {hours * gpu:.1f} GPU-hours" if gpu else ""))
        if data["trial_hours_expected"] is not None and saving is not None:
            expected = data["trial_hours_expected"]
            lines.append(
                f"expected about {expected:.1f} trial-hours with {saving.scheduler}"
                + (f", {expected * gpu:.1f} GPU-hours" if gpu else "")
                + f" (if a trial's time grows with {saving.time_attr})"
            )
    else:
        lines.append("no trials.timeout: the trial-hours are unbounded until trials run")
    if data["time_budget_s"]:
        lines.append(f"time budget {format_duration(data['time_budget_s'])}")
    return lines


def _saving_lines(saving: Saving | None, spec: Spec, total: int) -> list[str]:
    if saving is None:
        kind = spec.scheduler.type
        return {
            "fifo": ["fifo: every trial runs to its end (no early stopping)"],
            "median": ["median: what it saves depends on the results (no rung arithmetic)"],
            "pbt": ["pbt: every trial trains to its end (it exploits, it does not stop)"],
        }.get(kind, [])
    unit = saving.time_attr
    rungs = ", ".join(f"{r:g}" for r in saving.rungs) or "none"
    return [
        f"{saving.scheduler}: expected {saving.expected_t:.1f} {unit} a trial against "
        f"{saving.max_t} under fifo (max_t): x{saving.factor:.1f} less, "
        f"{1 - 1 / saving.factor:.0%} saved",
        f"in all: about {saving.expected_t * total:.0f} {unit} against "
        f"{saving.max_t * total} for {total} trials; rungs at {rungs}",
    ]


# -- output ------------------------------------------------------------------------------------


def main(args: argparse.Namespace) -> int:
    loaded = load_spec(args.spec, args.overrides)  # (what validate says, before anything)
    spec = loaded.spec
    compiled = backend_for(spec).describe(loaded)
    try:
        configs = preview_configs(spec)
        share = feasible_share(spec) if spec.constraints else None
    except ExprEvalError as exc:  # a point the feasibility sample did not meet
        raise SweepspecError(evaluation_problem(exc)).located(loaded.source.locate) from None
    saving = scheduler_saving(spec)
    money = budget(spec, saving)
    if args.format == "json":
        data = {
            "name": spec.run_name,
            "spec": spec.dump(),
            "compiles_to": compiled,
            "configs": configs,
            "constraints": None if share is None else {"share": share[0], "each": share[1]},
            "scheduler": None
            if saving is None
            else {**asdict(saving), "factor": saving.factor, "saved": 1 - 1 / saving.factor},
            "budget": money,
        }
        print(json.dumps(data, indent=2, default=str))
        return 0
    _print_text(loaded, compiled, configs, share, saving, money)
    return 0


def _print_text(
    loaded: LoadedSpec,
    compiled: list[str],
    configs: list[dict[str, Any]],
    share: tuple[float, list[float]] | None,
    saving: Saving | None,
    money: dict[str, Any],
) -> None:
    spec = loaded.spec
    print("# resolved spec")
    print(yaml.safe_dump(spec.dump(), sort_keys=False).rstrip())
    print("\n# compiles to")
    for line in compiled:
        print(f"  {line}")
    tried = sum(1 for c in configs if c["source"] == "try_first")
    head = f"{tried} try_first, then " if tried else ""
    print(f"\n# sampled configs: {head}{len(configs) - tried} random (before the searcher learns)")
    _table(spec, configs)
    if share is not None:
        parts = ", ".join(f"#{i} {s:.0%}" for i, s in enumerate(share[1]))
        print(f"\n# constraints: {share[0]:.1%} of 1000 samples satisfy all ({parts})")
    print("\n# scheduler")
    for line in _saving_lines(saving, spec, money["trials"]):
        print(f"  {line}")
    print("\n# budget")
    for line in _budget_lines(money, saving):
        print(f"  {line}")


def _table(spec: Spec, configs: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    paths = [p.path for p in spec.sampled_params()]
    table = Table(show_edge=False)
    table.add_column("#", justify="right")
    table.add_column("from")
    for p in paths:
        table.add_column(p, justify="right")
    table.add_column("constraints")
    for i, row in enumerate(configs):
        broken = row["violated"]
        mark = "ok" if not broken else "INFEASIBLE: breaks " + ", ".join(f"#{b}" for b in broken)
        table.add_row(
            str(i),
            row["source"],
            *(_cell(row["params"], p) for p in paths),
            mark if spec.constraints else "",
            style="dim" if broken else None,
        )
    Console(file=sys.stdout, width=None if sys.stdout.isatty() else 240).print(table)


def _cell(values: Mapping[str, Any], path: str) -> str:
    if path not in values:
        return "-"  # its `when` does not hold
    value = values[path]
    if isinstance(value, float):
        return f"{value:.4g}"
    return json.dumps(value) if isinstance(value, list | dict) else str(value)
