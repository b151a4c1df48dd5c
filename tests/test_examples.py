"""Tests for the example objectives in ``sweepspec_examples``."""

from __future__ import annotations

import math
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from sweepspec_examples import faulty, toy


@dataclass
class FakeCheckpoint:
    state: Any

    def load(self) -> Any:
        return self.state


@dataclass
class FakeTrial:
    dir: Path
    checkpoint: FakeCheckpoint | None = None
    trial_id: str = "trial-0"
    reports: list[dict[str, Any]] = field(default_factory=list)
    checkpoints: list[Any] = field(default_factory=list)

    def report(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        self.reports.append(dict(metrics))
        self.checkpoints.append(checkpoint)

    def resumed(self) -> FakeTrial:
        """A new trial resuming from this trial's last checkpoint."""
        return FakeTrial(dir=self.dir, checkpoint=FakeCheckpoint(self.checkpoints[-1]))


@pytest.fixture
def trial(tmp_path: Path) -> FakeTrial:
    return FakeTrial(dir=tmp_path)


def all_finite(metrics: dict[str, Any]) -> bool:
    return all(math.isfinite(v) for v in metrics.values())


def test_package_imports_nothing_heavy() -> None:
    code = (
        "import sys, sweepspec_examples, sweepspec_examples.toy, sweepspec_examples.faulty\n"
        "heavy = {'torch', 'gymnasium', 'sweepspec'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_quadratic(trial: FakeTrial) -> None:
    assert toy.quadratic({"x": 0.3, "y": -0.1}, trial) == {"loss": 0.0}
    assert toy.quadratic({"x": 0.3, "y": -0.1, "optimizer": "sgd"}, trial)["loss"] == 0.1
    assert toy.quadratic({"x": 1.3, "y": -0.1}, trial)["loss"] == pytest.approx(1.0)
    assert trial.reports == []


def test_curve_reports_every_epoch(trial: FakeTrial) -> None:
    result = toy.curve({"lr": 10**-2.5, "epochs": 10}, trial)
    assert [r["epoch"] for r in trial.reports] == list(range(1, 11))
    assert trial.checkpoints[-1] == {"step": 10}
    losses = [r["loss"] for r in trial.reports]
    assert losses == sorted(losses, reverse=True)
    assert result["loss"] == pytest.approx(0.1)
    worse = toy.curve({"lr": 0.1, "epochs": 10}, FakeTrial(dir=trial.dir))
    assert worse["loss"] > result["loss"]


def test_curve_resumes_from_checkpoint(tmp_path: Path) -> None:
    resumed = FakeTrial(dir=tmp_path, checkpoint=FakeCheckpoint({"step": 5}))
    result = toy.curve({"lr": 1e-3, "epochs": 10}, resumed)
    assert [r["epoch"] for r in resumed.reports] == [6, 7, 8, 9, 10]
    fresh = FakeTrial(dir=tmp_path)
    assert toy.curve({"lr": 1e-3, "epochs": 10}, fresh) == result
    assert fresh.reports[5:] == resumed.reports


def test_busy(trial: FakeTrial) -> None:
    assert toy.ITERS_PER_UNIT > 0
    assert toy.busy({"x": 1.5, "work": 0.01}, trial) == {"loss": 1.0}


def test_nested(trial: FakeTrial) -> None:
    best = {"risk_config": {"risk_weights": {"drawdown_pct": 0.2}}}
    worse = {
        "risk_config": {"risk_weights": {"drawdown_pct": 0.5, "volatility_pct": 0.4}},
        "strategy": {"lookback": 50},
    }
    assert toy.nested(best, trial)["sharpe"] == pytest.approx(2.0)
    assert toy.nested(worse, trial)["loss"] > toy.nested(best, trial)["loss"]


def test_multi_trades_off(trial: FakeTrial) -> None:
    small = toy.multi({"width": 16, "depth": 1}, trial)
    big = toy.multi({"width": 256, "depth": 4}, trial)
    assert big["accuracy"] > small["accuracy"]
    assert big["latency_ms"] > small["latency_ms"]


def test_faulty_in_process(trial: FakeTrial) -> None:
    with pytest.raises(ValueError, match="boom"):
        faulty.raises({}, trial)
    assert math.isnan(faulty.nan({}, trial)["loss"])
    assert faulty.inf({}, trial)["loss"] == math.inf
    assert faulty.missing_metric({}, trial) == {"other": 1.0}
    assert faulty.returns_none_without_report({}, trial) is None
    assert trial.reports == []


def test_faulty_flaky(trial: FakeTrial) -> None:
    config = {"key": "a", "marker_dir": str(trial.dir / "markers")}
    with pytest.raises(RuntimeError, match="flaky"):
        faulty.flaky(config, trial)
    assert faulty.flaky(config, trial) == {"loss": 1.0}
    with pytest.raises(RuntimeError):
        faulty.flaky({**config, "key": "b"}, trial)


def test_faulty_nan_report(trial: FakeTrial) -> None:
    assert faulty.nan_report({}, trial) == {"loss": 0.5}
    assert [math.isnan(r["loss"]) for r in trial.reports] == [False, True, False]


@pytest.mark.parametrize(
    "name", ["hangs", "busy_hang", "exits", "segfault", "spawns_child_and_hangs"]
)
def test_faulty_dangerous_are_callable(name: str) -> None:
    assert callable(getattr(faulty, name))


@pytest.mark.slow
def test_mlp_trains_and_resumes(tmp_path: Path) -> None:
    from sweepspec_examples import mlp

    config = {"lr": 1e-2, "hidden": 32, "batch_size": 64, "epochs": 2}
    first = FakeTrial(dir=tmp_path)
    result = mlp.train(config, first)
    assert [r["epoch"] for r in first.reports] == [1, 2]
    assert result["val_accuracy"] > 0.6  # two balanced classes: chance is ~0.5
    assert all_finite(result)
    pickle.dumps(first.checkpoints[-1])

    resumed = first.resumed()
    final = mlp.train({**config, "epochs": 4}, resumed)
    assert [r["epoch"] for r in resumed.reports] == [3, 4]

    unbroken = FakeTrial(dir=tmp_path)
    assert mlp.train({**config, "epochs": 4}, unbroken) == final


def test_mlp_device_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    from sweepspec_examples import mlp

    monkeypatch.setattr(mlp.torch.cuda, "is_available", lambda: False)
    assert mlp.pick_device("cpu").type == "cpu"
    assert mlp.pick_device("auto").type == "cpu"
    with pytest.raises(RuntimeError, match="sees no CUDA GPU"):
        mlp.pick_device("cuda")
    monkeypatch.setattr(mlp.torch.cuda, "is_available", lambda: True)
    assert mlp.pick_device("auto").type == "cuda"


@pytest.mark.slow
def test_mlp_sgd_with_dropout(trial: FakeTrial) -> None:
    from sweepspec_examples import mlp

    config = {"optimizer": "sgd", "momentum": 0.9, "lr": 0.05, "dropout": 0.1, "layers": 3}
    result = mlp.train({**config, "hidden": 16, "epochs": 1, "unknown_key": 1}, trial)
    assert all_finite(result)
    with pytest.raises(ValueError, match="optimizer"):
        mlp.train({"optimizer": "rmsprop"}, trial)


@pytest.mark.slow
def test_dqn_trains_and_resumes(tmp_path: Path) -> None:
    from sweepspec_examples import dqn

    config = {"total_timesteps": 2000, "eval_every": 500, "learning_starts": 500, "seed": 1}
    first = FakeTrial(dir=tmp_path)
    result = dqn.train(config, first)
    assert [r["timesteps"] for r in first.reports] == [500, 1000, 1500, 2000]
    assert all(all_finite(r) for r in first.reports)
    assert "loss" in result
    assert all_finite(result)
    assert result["episode_reward_mean"] > 0
    checkpoint = pickle.loads(pickle.dumps(first.checkpoints[1]))
    assert checkpoint["step"] == 1000

    resumed = FakeTrial(dir=tmp_path, checkpoint=FakeCheckpoint(checkpoint))
    again = dqn.train(config, resumed)
    assert [r["timesteps"] for r in resumed.reports] == [1500, 2000]
    assert all_finite(again)


@pytest.mark.slow
def test_dqn_sgd_net_arch(trial: FakeTrial) -> None:
    from sweepspec_examples import dqn

    config = {
        "total_timesteps": 300,
        "eval_every": 100,
        "learning_starts": 100,
        "optimizer": "sgd",
        "momentum": 0.9,
        "net_arch": [16, 16],
        "extra": "ignored",
    }
    result = dqn.train(config, trial)
    assert len(trial.reports) == 3
    assert all_finite(result)
