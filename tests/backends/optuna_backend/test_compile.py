"""Spec -> OptunaPlan: the pruner that stands for each scheduler, its ``max_t`` and
``time_attr``, the study name. Pure: nothing runs."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")

from sweepspec.backends.optuna_backend.compile import OptunaPlan, compile_optuna  # noqa: E402
from sweepspec.load import load_text  # noqa: E402

HEAD = """\
sweepspec: 1
name: compiled
objective: {function: sweepspec_examples.toy:quadratic, metric: loss, mode: min}
space:
  x: {uniform: [0.0, 1.0]}
"""


def plan_of(snippet: str) -> OptunaPlan:
    loaded = load_text(HEAD + textwrap.dedent(snippet), "spec.yaml", feasibility=False)
    return compile_optuna(loaded.spec)


# -- schedulers -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "pruner", "kwargs", "max_t"),
    [
        pytest.param("{type: fifo}", "NopPruner", {}, None, id="fifo"),
        pytest.param(
            "{type: asha, max_t: 27, grace_period: 3, reduction_factor: 3}",
            "SuccessiveHalvingPruner",
            {"min_resource": 3, "reduction_factor": 3, "min_early_stopping_rate": 0},
            27,
            id="asha",
        ),
        pytest.param(
            "{type: asha}",
            "SuccessiveHalvingPruner",
            {"min_resource": 1, "reduction_factor": 4, "min_early_stopping_rate": 0},
            100,
            id="asha-defaults",
        ),
        pytest.param(
            "{type: hyperband, max_t: 81, reduction_factor: 3}",
            "HyperbandPruner",
            {"min_resource": 1, "max_resource": 81, "reduction_factor": 3},
            81,
            id="hyperband",
        ),
        pytest.param(
            "{type: median, grace_period: 5, min_samples_required: 4}",
            "MedianPruner",
            {"n_startup_trials": 4, "n_warmup_steps": 5},
            None,
            id="median",
        ),
        pytest.param(
            "{type: median, grace_period: 3.0}",
            "MedianPruner",
            {"n_startup_trials": 3, "n_warmup_steps": 3},
            None,
            id="median-whole-float",
        ),
    ],
)
def test_pruner(scheduler: str, pruner: str, kwargs: dict[str, Any], max_t: int | None) -> None:
    plan = plan_of(f"scheduler: {scheduler}\n")
    assert (plan.pruner, plan.pruner_kwargs, plan.max_t) == (pruner, kwargs, max_t)
    assert plan.time_attr == "training_iteration"
    built = getattr(optuna.pruners, plan.pruner)(**plan.pruner_kwargs)
    assert type(built).__name__ == pruner
    assert isinstance(built, optuna.pruners.BasePruner)


def test_time_attr_is_kept() -> None:
    plan = plan_of("scheduler: {type: asha, max_t: 10, time_attr: epoch}\n")
    assert (plan.time_attr, plan.max_t) == ("epoch", 10)


def test_study_name() -> None:
    plan = plan_of("")
    assert plan.study_name == "compiled"
    loaded = load_text(HEAD, "spec.yaml", feasibility=False)
    assert compile_optuna(loaded.spec, study_name="other").study_name == "other"


def test_promotion_based_asha_has_rungs_and_no_pruner() -> None:
    from sweepspec.backends.optuna_backend.compile import describe_optuna

    plan = plan_of("scheduler: {type: asha, max_t: 20, grace_period: 3, reduction_factor: 2, "
                   "mode: promote}\n")  # fmt: skip
    assert (plan.pruner, plan.rungs, plan.reduction_factor, plan.max_t) == (
        "NopPruner", (3, 6, 12), 2, 20,
    )  # fmt: skip
    assert plan.pruning and plan.promoting
    assert any("promotion-based ASHA: trials pause at steps [3, 6, 12]" in line
               for line in describe_optuna(plan, "2 at a time"))  # fmt: skip
    stop = plan_of("scheduler: {type: asha, max_t: 20, grace_period: 3, reduction_factor: 2}\n")
    assert stop.rungs is None and not stop.promoting
