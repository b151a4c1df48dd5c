"""The scheduler's expected saving (ASHA and HyperBand rung arithmetic) and the compute
budget: pure functions of the Spec."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sweepspec.load import load_text
from sweepspec.search.savings import Saving, budget, scheduler_saving
from sweepspec.spec.root import Spec
from tests.builders import spec


def _spec(backend: str = "optuna", **sections: Any) -> Spec:
    text = yaml.safe_dump(spec("s", backend, **sections), sort_keys=False)
    return load_text(text, "spec.yaml", feasibility=False).spec


@pytest.mark.parametrize(
    ("scheduler", "expected", "rungs"),
    [
        # rungs 10, 20, 40, 80: 10 + 10/2 + 20/4 + 40/8 + 20/16
        ({"type": "asha", "max_t": 100, "grace_period": 10, "reduction_factor": 2}, 26.25,
         (10, 20, 40, 80)),
        # two brackets: the second's rungs start at 20: 20 + 20/2 + 40/4 + 20/8, averaged
        ({"type": "asha", "max_t": 100, "grace_period": 10, "reduction_factor": 2,
          "brackets": 2}, (26.25 + 20 + 10 + 10 + 2.5) / 2, (10, 20, 40, 80)),
        # no rung before max_t: every trial runs to its end
        ({"type": "asha", "max_t": 10, "grace_period": 10}, 10.0, ()),
        # R = 81, eta = 3: brackets of 81, 34, 15, 8, 5 trials; 1581 units of work in all
        ({"type": "hyperband", "max_t": 81, "reduction_factor": 3}, 1581 / 143, (1, 3, 9, 27)),
        ({"type": "hyperband", "max_t": 1}, 1.0, ()),
    ],
    ids=["asha", "asha-brackets", "asha-no-rung", "hyperband", "hyperband-one-step"],
)  # fmt: skip
def test_the_saving_is_rung_arithmetic(
    scheduler: dict[str, Any], expected: float, rungs: tuple[float, ...]
) -> None:
    backend = "ray" if scheduler.get("brackets", 1) > 1 else "optuna"  # optuna: one bracket
    saving = scheduler_saving(_spec(backend, scheduler=scheduler))
    assert saving is not None
    assert saving.scheduler == scheduler["type"] and saving.time_attr == "training_iteration"
    assert saving.expected_t == pytest.approx(expected)
    assert saving.rungs == rungs
    assert saving.factor == pytest.approx(scheduler["max_t"] / expected)


@pytest.mark.parametrize("scheduler", [{"type": "fifo"}, {"type": "median"}])
def test_schedulers_without_rungs_claim_no_saving(scheduler: dict[str, Any]) -> None:
    assert scheduler_saving(_spec(scheduler=scheduler)) is None


def test_a_saving_of_no_work_is_no_factor() -> None:
    assert Saving("asha", "training_iteration", 10, 0.0, ()).factor == 1.0


def test_the_budget_is_worst_case_and_expected_hours() -> None:
    s = _spec(
        trials={"num_samples": 10, "timeout": "1h"},
        resources={"per_trial": {"gpu": 0.5}},
        stop={"sweep": {"time_budget": "3h"}},
    )
    saving = Saving("asha", "training_iteration", 100, 25.0, (10.0,))
    assert budget(s, saving) == {
        "trials": 10,
        "cpu_per_trial": s.resources.per_trial.cpu,
        "gpu_per_trial": 0.5,
        "timeout_s": 3600.0,
        "trial_hours_max": 10.0,
        "gpu_hours_max": 5.0,
        "trial_hours_expected": 2.5,
        "gpu_hours_expected": 1.25,
        "time_budget_s": 10800.0,
    }
    plain = budget(_spec(), None)
    assert plain["trials"] == 4 and plain["trial_hours_max"] is None
    assert plain["trial_hours_expected"] is None and plain["gpu_hours_max"] is None
    no_saving = budget(s, None)
    assert no_saving["trial_hours_max"] == 10.0 and no_saving["trial_hours_expected"] is None
