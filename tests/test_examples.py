"""Tests for the example objectives in ``sweepspec_examples``."""

from __future__ import annotations

import copy
import json
import math
import pickle
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepspec.backends import backend_for, backend_named
from sweepspec.errors import SweepspecError
from sweepspec.load import load_spec, load_text
from sweepspec.spec.backend import OptunaBackend, RayBackend
from sweepspec.trial import TrialStopped
from sweepspec_examples import faulty, toy

REPO = Path(__file__).resolve().parents[1]


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


@dataclass
class StoppingTrial(FakeTrial):
    """Answers its ``stop_after``-th report as a stop rule does (a token budget reached)."""

    stop_after: int = 1

    def report(self, metrics: dict[str, Any], checkpoint: Any = None) -> None:
        super().report(metrics, checkpoint)
        if len(self.reports) >= self.stop_after:
            raise TrialStopped("stop")


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


# --------------------------------------------------------------------------- the sweeps

SWEEPS = sorted(p for p in (REPO / "sweeps").glob("*.yaml") if not p.name.startswith("_"))
BACKENDS = ("optuna", "ray")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", SWEEPS, ids=[p.name for p in SWEEPS])
def test_every_sweep_validates_and_compiles(path: Path, backend: str) -> None:
    """Each spec loads as written and compiles on its backend; on the other backend it
    compiles too, unless that backend refuses what the spec asks for (PBT on Optuna, a
    database storage on Ray): then the refusal is the backend's own check, nothing else."""
    loaded = load_spec(path)
    if loaded.spec.backend.type != backend:
        data = copy.deepcopy(loaded.resolved)
        data["backend"] = {"type": backend}
        try:
            loaded = load_text(yaml.safe_dump(data, sort_keys=False), str(path), spec_path=path)
        except SweepspecError as exc:
            model = OptunaBackend() if backend == "optuna" else RayBackend(type="ray")
            spec = loaded.spec.model_copy(update={"backend": model})
            refused = backend_named(backend).check(spec)
            assert refused, exc
            assert sorted(p.message for p in exc.problems) == sorted(f.message for f in refused)
            return
    assert loaded.spec.backend.type == backend
    lines = backend_for(loaded.spec).describe(loaded)
    assert lines and all(isinstance(line, str) for line in lines)


@pytest.mark.parametrize(
    ("name", "backends"),
    [
        ("dqn.yaml", {"optuna", "ray"}),
        ("dqn-pbt.yaml", {"ray"}),
        ("lora.yaml", {"optuna", "ray"}),
        ("classifier.yaml", {"optuna"}),  # promotion-based ASHA: the optuna backend's
    ],
)
def test_the_real_examples_run_where_they_say(name: str, backends: set[str]) -> None:
    path = REPO / "sweeps" / name
    loaded = load_spec(path)
    allowed = set()
    for backend in BACKENDS:
        model = OptunaBackend() if backend == "optuna" else RayBackend(type="ray")
        if not backend_named(backend).check(loaded.spec.model_copy(update={"backend": model})):
            allowed.add(backend)
    assert allowed == backends


# --------------------------------------------------------------------------- dqn (SB3)

DQN_TINY = {
    "total_timesteps": 4000,
    "report_every": 1000,
    "learning_rate": 2.5e-3,
    "batch_size": 64,
    "buffer_size": 10000,
    "policy_kwargs": {"net_arch": [64, 64]},
    "learning_starts": 500,
    "exploration_fraction": 0.25,
    "target_update_interval": 250,
    "train_freq": 4,
    "extra": "ignored",
}


@pytest.mark.slow
def test_dqn_learns_and_resumes(tmp_path: Path) -> None:
    pytest.importorskip("stable_baselines3")
    from sweepspec_examples import dqn

    first = FakeTrial(dir=tmp_path)
    result = dqn.train(DQN_TINY, first)
    assert [r["timesteps"] for r in first.reports] == [1000, 2000, 3000, 4000]
    assert all(all_finite(r) for r in first.reports)
    rewards = [r["episode_reward_mean"] for r in first.reports]
    assert rewards[-1] > 2 * rewards[0]  # an untrained policy falls within ~10-20 steps
    assert result["episode_reward_mean"] == rewards[-1]
    assert "loss" in first.reports[-1]

    # resume from the second checkpoint with a mutated learning rate and exploration (PBT)
    mutated = {**DQN_TINY, "learning_rate": 5e-4, "exploration_final_eps": 0.2}
    resumed = FakeTrial(dir=tmp_path, checkpoint=FakeCheckpoint(first.checkpoints[1]))
    again = dqn.train(mutated, resumed)
    assert [r["timesteps"] for r in resumed.reports] == [3000, 4000]
    assert resumed.reports[-1]["exploration_rate"] == pytest.approx(0.2)
    assert all_finite(again)


# --------------------------------------------------------------------------- lora

LORA_TINY = {
    "base": {"hidden_size": 32, "seq_len": 32, "pretrain_steps": 150, "pretrain_batch_size": 32},
    "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "lora_r": 8,
    "lora_alpha": 16,
    "lora_dropout": 0.0,
    "learning_rate": 2e-2,
    "warmup_ratio": 0.0,
    "batch_size": 8,
    "max_tokens": 16384,  # 64 steps of 8 x 32 tokens
    "eval_tokens": 4096,  # 4 evaluations
}


def lora_trial(root: Path, n: int = 0) -> FakeTrial:
    """A trial whose directory sits where a run puts it: <storage>/<run>/trials/<id>."""
    return FakeTrial(dir=root / "runs" / "lora" / "trials" / str(n))


@pytest.mark.slow
def test_lora_adapts_the_base_model(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    from sweepspec_examples import lora

    trial = lora_trial(tmp_path)
    result = lora.train(LORA_TINY, trial)
    assert [r["tokens_seen"] for r in trial.reports] == [4096, 8192, 12288, 16384]
    losses = [r["eval_loss"] for r in trial.reports]
    assert losses[-1] < losses[0]
    assert result["eval_loss"] < result["base_eval_loss"]  # adapted to the new text
    for r in trial.reports:
        assert r["eval_perplexity"] == pytest.approx(math.exp(r["eval_loss"]))
        assert r["base_eval_loss"] == result["base_eval_loss"]
    cached = sorted((tmp_path / "runs" / ".cache" / "sweepspec_examples").iterdir())
    assert sorted(p.suffix for p in cached) == ["", ".lock"]  # the model and its lock, no temp
    model_dir = next(p for p in cached if p.is_dir())
    meta = json.loads((model_dir / "meta.json").read_text())
    assert meta["base_text_loss"] < meta["base_eval_loss"]  # a real domain shift

    # a second trial reuses the cached model, and a token budget stops it cleanly
    stopped = StoppingTrial(dir=lora_trial(tmp_path, 1).dir, stop_after=2)
    with pytest.raises(TrialStopped):
        lora.train(LORA_TINY, stopped)
    assert len(stopped.reports) == 2
    assert (model_dir / "meta.json").read_text() == json.dumps(meta, indent=2)


#: Like a run's driver: import the objective's module once, then fork two trials at once.
BUILD_BASE = """\
import json, multiprocessing, pathlib, sys
import torch
from sweepspec_examples import lora

def build(_):
    settings = lora.BaseSettings(hidden_size=16, seq_len=16, pretrain_steps=20)
    path, meta = lora.base_model(settings, pathlib.Path(sys.argv[1]), torch.zeros(2, 16).long())
    return {"path": str(path), "meta": meta}

with multiprocessing.get_context("fork").Pool(2) as pool:
    print(json.dumps(pool.map(build, range(2))))
"""


@pytest.mark.slow
def test_lora_base_model_is_built_once_by_concurrent_trials(tmp_path: Path) -> None:
    pytest.importorskip("peft")
    done = subprocess.run(
        [sys.executable, "-c", BUILD_BASE, str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    first, second = json.loads(done.stdout.strip().splitlines()[-1])
    assert first == second  # one built it (its pid is in the meta), the other waited for it
    assert [p.name for p in tmp_path.iterdir() if p.is_dir()] == [Path(first["path"]).name]


# --------------------------------------------------------------------------- classifier


@pytest.mark.parametrize(
    "config",
    [
        {"optimizer": "adam", "learning_rate": 3e-3, "width": 64, "depth": 2, "dropout": 0.1},
        {"optimizer": "sgd", "momentum": 0.9, "learning_rate": 0.05, "width": 32, "depth": 1},
    ],
    ids=["adam", "sgd"],
)
def test_classifier_learns_the_digits(tmp_path: Path, config: dict[str, Any]) -> None:
    pytest.importorskip("sklearn")
    from sweepspec_examples import classifier

    trial = FakeTrial(dir=tmp_path)
    result = classifier.train({**config, "epochs": 4, "batch_size": 32}, trial)
    accuracy = [r["accuracy"] for r in trial.reports]
    assert [r["epoch"] for r in trial.reports] == [1, 2, 3, 4]
    assert accuracy[-1] > accuracy[0]
    assert accuracy[-1] > 0.8  # 10 classes: chance is 0.1
    assert all(r["latency_ms"] > 0 and all_finite(r) for r in trial.reports)
    assert result["accuracy"] == accuracy[-1]
    # sweeps/classifier.yaml optimises a score of the two: every report (and the end) has one
    from sweepspec.search.plan import compile_search

    plan = compile_search(load_spec(REPO / "sweeps" / "classifier.yaml").spec)
    assert plan.metric_names == ["score"] and plan.score is not None
    for r in trial.reports:
        assert plan.scored(r)["score"] == pytest.approx(r["accuracy"] - 0.1 * r["latency_ms"])
    values = plan.final_values(dict(result))
    assert values == [pytest.approx(result["accuracy"] - 0.1 * result["latency_ms"])]

    resumed = trial.resumed()
    final = classifier.train({**config, "epochs": 6, "batch_size": 32}, resumed)
    assert [r["epoch"] for r in resumed.reports] == [5, 6]
    assert all_finite(final)
    with pytest.raises(ValueError, match="optimizer"):
        classifier.train({"optimizer": "rmsprop"}, FakeTrial(dir=tmp_path))


@pytest.mark.slow
def test_the_classifier_sweep_pauses_promotes_and_improves(tmp_path: Path) -> None:
    """sweeps/classifier.yaml itself, tiny, from the CLI: promotion-based ASHA pauses trials
    at the rung, each trial's epochs run once, and the best trial beats its first epoch."""
    pytest.importorskip("sklearn")
    import csv

    runs = tmp_path / "runs"
    done = subprocess.run(
        [sys.executable, "-m", "sweepspec", "run", str(REPO / "sweeps" / "classifier.yaml"),
         "trials.num_samples=8", "objective.config.epochs=6", f"storage={runs}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PAUSED" in done.stderr
    rundir = runs / "digits-classifier"
    with open(rundir / "trials.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 8 and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    for r in rows:
        lines = (rundir / "reports" / f"{r['trial_id']}.jsonl").read_text().splitlines()
        steps = [json.loads(line)["step"] for line in lines]
        assert steps == list(range(1, len(steps) + 1)) and len(steps) in (3, 6)
    complete = [r for r in rows if r["state"] == "COMPLETE"]
    assert len(complete) >= 4  # the top half of the 8 at the rung (epoch 3) went on
    best = max(complete, key=lambda r: float(r["score"]))
    first = json.loads(
        (rundir / "reports" / f"{best['trial_id']}.jsonl").read_text().split("\n")[0]
    )
    assert float(best["accuracy"]) > first["accuracy"]
