"""``sweepspec plan SPEC``: the resolved spec, what it compiles to, a table of sampled configs
(``try_first`` ones first, those that break a constraint marked), the share of samples that
satisfies the constraints, the scheduler's expected saving and the compute budget. Runs
nothing. The configs come from :mod:`sweepspec.search.preview`, the saving (rung arithmetic)
and the budget from :mod:`sweepspec.search.savings`; this module formats them."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

import yaml

from sweepspec.backends import backend_for
from sweepspec.errors import SweepspecError
from sweepspec.load import LoadedSpec, load_spec
from sweepspec.search.feasibility import evaluation_problem, feasible_share
from sweepspec.search.preview import preview_configs
from sweepspec.search.savings import Saving, budget, scheduler_saving
from sweepspec.spec.expr import ExprEvalError
from sweepspec.spec.root import Spec
from sweepspec.units import format_duration

__all__ = ["main"]


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
