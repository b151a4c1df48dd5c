"""Which reports need an answer from the driver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweepspec.compile.optuna_backend import compile_optuna
from sweepspec.load import load_spec
from sweepspec.run.stops import TrialStopRule, answers_needed
from tests.run.helpers import spec, write_spec


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
    plan = compile_optuna(loaded.spec)
    rule = TrialStopRule.from_spec(loaded.spec, plan.max_t)
    assert answers_needed(plan, rule) is needed
