"""``sweepspec plan``: the configs table (try_first first, infeasible samples marked), the
scheduler's expected saving by rung arithmetic, the budget; text and JSON. Nothing runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sweepspec.cli import main
from tests.builders import spec, write_spec

Capsys = pytest.CaptureFixture[str]


def _plan_json(
    tmp_path: Path, capsys: Capsys, backend: str = "optuna", **sections: Any
) -> dict[str, Any]:
    write_spec(tmp_path, spec("p", backend, **sections))
    assert main(["plan", "spec.yaml", "--format", "json"]) == 0
    data: dict[str, Any] = json.loads(capsys.readouterr().out)
    return data


CONSTRAINED = {
    "space": {
        "x": {"uniform": [-1.0, 1.0]},
        "y": {"uniform": [-1.0, 1.0]},
        "opt": {"choice": ["adam", "sgd"]},
        "momentum": {"uniform": [0.0, 0.9], "when": "opt == 'sgd'"},
    },
    "constraints": ["x < y"],
    "try_first": [{"x": -0.5, "y": 0.5, "opt": "sgd"}, {"x": -0.9, "opt": "adam"}],
}


def test_try_first_configs_come_first_and_infeasible_samples_are_marked(
    tmp_path: Path, capsys: Capsys
) -> None:
    data = _plan_json(tmp_path, capsys, **CONSTRAINED)
    configs = data["configs"]
    assert [c["source"] for c in configs] == ["try_first"] * 2 + ["sample"] * 5
    assert configs[0]["params"] == {"x": -0.5, "y": 0.5, "opt": "sgd", **configs[0]["params"]}
    assert "momentum" in configs[0]["params"]  # sampled: try_first left it out
    assert configs[1]["params"]["x"] == -0.9 and "momentum" not in configs[1]["params"]
    for c in configs:  # the mark tells the truth about the one constraint
        broken = c["params"]["x"] >= c["params"]["y"]
        assert c["violated"] == ([0] if broken else []) and c["feasible"] is not broken
    assert any(not c["feasible"] for c in configs), "seed 0 samples an infeasible config"
    assert data["constraints"]["share"] == pytest.approx(0.5, abs=0.1)

    assert main(["plan", "spec.yaml"]) == 0
    out = capsys.readouterr().out
    assert "# sampled configs: 2 try_first, then 5 random" in out
    rows = [line for line in out.splitlines() if "│" in line]
    assert [r.split("│")[1].strip() for r in rows] == ["try_first"] * 2 + ["sample"] * 5
    for row, c in zip(rows, configs, strict=True):
        assert ("INFEASIBLE: breaks #0" in row) is not c["feasible"], row
        assert (row.split("│")[5].strip() == "-") is ("momentum" not in c["params"]), row


@pytest.mark.parametrize(
    ("scheduler", "expected", "rungs"),
    [
        # rungs 10, 20, 40, 80: 10 + 10/2 + 20/4 + 40/8 + 20/16
        ({"type": "asha", "max_t": 100, "grace_period": 10, "reduction_factor": 2}, 26.25,
         [10, 20, 40, 80]),
        # two brackets: the second's rungs start at 20: 20 + 20/2 + 40/4 + 20/8, averaged
        ({"type": "asha", "max_t": 100, "grace_period": 10, "reduction_factor": 2,
          "brackets": 2}, (26.25 + 20 + 10 + 10 + 2.5) / 2, [10, 20, 40, 80]),
        # R = 81, eta = 3: brackets of 81, 34, 15, 8, 5 trials; 1581 units of work in all
        ({"type": "hyperband", "max_t": 81, "reduction_factor": 3}, 1581 / 143, [1, 3, 9, 27]),
    ],
    ids=["asha", "asha-brackets", "hyperband"],
)  # fmt: skip
def test_scheduler_saving_is_rung_arithmetic(
    tmp_path: Path,
    capsys: Capsys,
    scheduler: dict[str, Any],
    expected: float,
    rungs: list[float],
) -> None:
    data = _plan_json(
        tmp_path,
        capsys,
        "ray" if scheduler.get("brackets", 1) > 1 else "optuna",  # optuna: one bracket
        scheduler=scheduler,
        trials={"num_samples": 10, "timeout": "1h"},
        resources={"per_trial": {"gpu": 0.5}},
    )
    saving = data["scheduler"]
    assert saving["expected_t"] == pytest.approx(expected)
    assert saving["factor"] == pytest.approx(scheduler["max_t"] / expected)
    assert saving["rungs"] == rungs
    budget = data["budget"]
    assert budget["trial_hours_max"] == pytest.approx(10.0)
    assert budget["gpu_hours_max"] == pytest.approx(5.0)
    assert budget["trial_hours_expected"] == pytest.approx(10.0 * expected / scheduler["max_t"])
    assert main(["plan", "spec.yaml"]) == 0
    out = capsys.readouterr().out
    assert f"{scheduler['type']}: expected {expected:.1f} training_iteration a trial" in out
    assert f"against {scheduler['max_t']} under fifo (max_t)" in out
    assert "at most 10.0 trial-hours (10 x timeout 1h00m00s), 5.0 GPU-hours" in out


def test_fifo_and_median_claim_no_saving(tmp_path: Path, capsys: Capsys) -> None:
    assert _plan_json(tmp_path, capsys)["scheduler"] is None
    assert main(["plan", "spec.yaml"]) == 0
    assert "fifo: every trial runs to its end" in capsys.readouterr().out
    data = _plan_json(tmp_path, capsys, scheduler={"type": "median"})
    assert data["scheduler"] is None and data["budget"]["trial_hours_expected"] is None
    assert main(["plan", "spec.yaml"]) == 0
    assert "depends on the results" in capsys.readouterr().out


def test_plan_json_holds_the_resolved_spec_and_what_it_compiles_to(
    tmp_path: Path, capsys: Capsys
) -> None:
    data = _plan_json(tmp_path, capsys, trials={"num_samples": 7})
    assert data["name"] == "p"
    assert data["spec"]["trials"]["num_samples"] == 7
    assert any("RandomSampler" in line for line in data["compiles_to"])
    assert data["budget"]["trials"] == 7 and data["budget"]["trial_hours_max"] is None
    assert data["constraints"] is None


@pytest.mark.parametrize(
    ("derived", "message"),
    [
        ({"bad": "opt + x"}, "unsupported operand types for +"),
        ({"div": "1 / (x - x)"}, "division by zero"),
        ({"big": "10.0 ** (x * 1000 + 400)"}, "cannot be evaluated"),
        ({"cmp": "opt < x"}, "cannot be evaluated"),
    ],
)
def test_an_expression_error_is_located_not_a_traceback(
    tmp_path: Path, capsys: Capsys, derived: dict[str, str], message: str
) -> None:
    space = {"x": {"uniform": [0.0, 1.0]}, "opt": {"choice": ["adam", "sgd"]}}
    write_spec(tmp_path, spec("expr", space=space, derived=derived))
    assert main(["plan", str(tmp_path / "spec.yaml")]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "bug in sweepspec" not in err
    assert "spec.yaml:" in err and f"derived.{next(iter(derived))}:" in err and message in err


def test_an_expression_error_at_a_try_first_point_is_located(
    tmp_path: Path, capsys: Capsys
) -> None:
    space = {"x": {"uniform": [0.0, 1.0]}, "k": {"int": [0, 100000]}}
    data = spec("tf", space=space, derived={"d": "1 / (k - 77777)"}, try_first=[{"k": 77777}])
    write_spec(tmp_path, data)
    assert main(["plan", str(tmp_path / "spec.yaml")]) == 1
    err = capsys.readouterr().err
    assert "derived.d: cannot be evaluated" in err and "division by zero" in err
    assert "Traceback" not in err
