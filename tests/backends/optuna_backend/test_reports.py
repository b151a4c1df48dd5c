"""Which reports need an answer from the driver, and what it answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweepspec.backends.optuna_backend.compile import compile_optuna
from sweepspec.backends.optuna_backend.reports import Reports, progress_step
from sweepspec.load import load_spec
from tests.builders import spec, write_spec


@pytest.mark.parametrize(
    ("sections", "needed"),
    [
        ({}, False),  # fifo, no stop rule: a report can only be answered "continue"
        ({"scheduler": {"type": "asha", "max_t": 9, "grace_period": 1}}, True),
        ({"scheduler": {"type": "median"}}, True),
        ({"stop": {"trial": {"loss": 0.01}}}, True),
    ],
)
def test_answers_needed(tmp_path: Path, sections: dict[str, Any], needed: bool) -> None:
    loaded = load_spec(write_spec(tmp_path, spec("s", **sections)), [], feasibility=False)
    assert Reports(compile_optuna(loaded.spec)).answers_needed is needed


class _Trial:
    number = 0

    def __init__(self) -> None:
        self.reported: list[tuple[float, int]] = []

    def report(self, value: float, step: int) -> None:
        self.reported.append((value, step))

    def should_prune(self) -> bool:
        return self.reported[-1][0] > 1.0


def test_answers_stop_prune_and_continue(tmp_path: Path) -> None:
    loaded = load_spec(
        write_spec(
            tmp_path,
            spec(
                "s",
                scheduler={"type": "asha", "max_t": 5, "grace_period": 1},
                stop={"trial": {"loss": {"<=": 0.1}}},
            ),
        ),
        feasibility=False,
    )
    reports = Reports(compile_optuna(loaded.spec))
    trial: Any = _Trial()
    assert reports.decide(trial, 1, 0.0, {"loss": 0.5}, {"loss": 0.5}) == "continue"
    assert reports.decide(trial, 1, 0.0, {"loss": 0.4}, {"loss": 0.4}) == "continue"
    assert trial.reported == [(0.5, 1)]  # a repeated step is not shown to the pruner again
    assert reports.decide(trial, 2, 0.0, {"loss": 2.0}, {"loss": 2.0}) == "prune"
    assert reports.decide(trial, 3, 0.0, {"loss": float("nan")}, {"loss": float("nan")}) == (
        "continue"
    )
    assert trial.reported[-1] == (2.0, 2)  # NaN never reaches the pruner
    assert reports.decide(trial, 4, 0.0, {"loss": 0.05}, {"loss": 0.05}) == "stop"  # stop.trial
    assert reports.decide(trial, 5, 0.0, {"loss": 0.5}, {"loss": 0.5}) == "stop"  # max_t


def test_progress_step_by_time_attr() -> None:
    assert progress_step("training_iteration", 3, 9.5, {}) == 3
    assert progress_step("time_total_s", 3, 9.5, {}) == 9
    assert progress_step("epoch", 3, 9.5, {"epoch": 7.0}) == 7
    assert progress_step("epoch", 3, 9.5, {"epoch": float("nan")}) == 3
