"""The stable-baselines3 callback and restore helper, on real SB3 models and CartPole: reports
every N steps, checkpoints that restore the model, its replay buffer and the trial's current
hyperparameters, and a stopped trial ends ``learn`` at the step it was stopped at."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

pytest.importorskip("stable_baselines3")

import gymnasium as gym
import numpy as np
import torch
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from sweepspec.integrations.sb3 import SweepspecCallback, checkpoint_state, restore_model
from sweepspec.trial import TrialStopped
from tests.integrations.fakes import RecordingTrial, SavedCheckpoint

DQN_ARGS = {
    "learning_rate": 1e-3,
    "buffer_size": 2000,
    "learning_starts": 100,
    "batch_size": 32,
    "train_freq": 4,
    "target_update_interval": 100,
    "exploration_fraction": 0.5,
    "exploration_final_eps": 0.05,
    "policy_kwargs": {"net_arch": [16]},
}


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


def dqn(**overrides: object) -> DQN:
    return DQN(
        "MlpPolicy", gym.make("CartPole-v1"), seed=0, device="cpu", **{**DQN_ARGS, **overrides}
    )


class Ends(BaseCallback):
    def __init__(self) -> None:
        super().__init__()
        self.ended_at: int | None = None

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self.ended_at = self.num_timesteps


def test_reports_every_n_steps_with_a_checkpoint(tmp_path: Path) -> None:
    trial = RecordingTrial(dir=tmp_path)
    model = dqn()
    model.learn(600, callback=SweepspecCallback(trial, report_every=200))
    assert trial.values("timesteps") == [200.0, 400.0, 600.0]
    for report in trial.reports:
        assert report["episode_reward_mean"] > 0
        assert report["episode_length_mean"] == report["episode_reward_mean"]  # CartPole: 1/step
        assert 0.05 <= report["exploration_rate"] <= 1.0
    assert "loss" in trial.reports[-1]  # learning started at step 100
    last = trial.checkpoints[-1]
    assert last["num_timesteps"] == 600
    assert len(last["ep_info_buffer"]) > 0
    assert last["replay_buffer"] is not None


def test_restore_applies_the_config_and_goes_on(tmp_path: Path) -> None:
    model = dqn()
    model.learn(400)
    saved = pickle.loads(pickle.dumps(checkpoint_state(model)))

    config = {**DQN_ARGS, "learning_rate": 0.05, "exploration_final_eps": 0.3, "gamma": 0.9}
    config["policy_kwargs"] = {"net_arch": [999]}  # shapes a network: never taken on restore
    trial = RecordingTrial(dir=tmp_path, checkpoint=SavedCheckpoint(saved))
    restored = restore_model(trial, DQN, gym.make("CartPole-v1"), config, device="cpu")
    assert restored is not None
    assert restored.num_timesteps == 400
    assert restored.learning_rate == 0.05
    assert restored.lr_schedule(1.0) == 0.05
    assert restored.gamma == 0.9
    assert restored.exploration_schedule(0.0) == pytest.approx(0.3)  # PBT's mutation took
    for mine, theirs in zip(
        restored.policy.state_dict().values(), model.policy.state_dict().values(), strict=True
    ):
        assert torch.equal(mine, theirs)
    # the replay buffer is whole again: same transitions, full capacity
    buf, orig = restored.replay_buffer, model.replay_buffer
    assert buf is not None and orig is not None
    assert (buf.pos, buf.full, buf.buffer_size) == (orig.pos, orig.full, orig.buffer_size)
    assert buf.observations.shape == orig.observations.shape
    assert np.array_equal(buf.observations, orig.observations)
    assert np.array_equal(buf.actions, orig.actions)
    assert len(restored.ep_info_buffer) == len(saved["ep_info_buffer"])

    restored.learn(
        600 - restored.num_timesteps,
        callback=SweepspecCallback(trial, report_every=200),
        reset_num_timesteps=False,
    )
    assert trial.values("timesteps") == [600.0]
    assert trial.reports[0]["exploration_rate"] >= 0.3
    assert optimizer_lr(restored) == pytest.approx(0.05)


def optimizer_lr(model: DQN) -> float:
    return float(model.policy.optimizer.param_groups[0]["lr"])


def test_no_checkpoint_no_model(tmp_path: Path) -> None:
    trial = RecordingTrial(dir=tmp_path)
    assert restore_model(trial, DQN, gym.make("CartPole-v1")) is None


def test_a_stopped_trial_ends_learn_cleanly(tmp_path: Path) -> None:
    trial = RecordingTrial(dir=tmp_path, stop_at=2)
    model = dqn()
    ends = Ends()
    with pytest.raises(TrialStopped) as stopped:
        model.learn(1000, callback=CallbackList([ends, SweepspecCallback(trial, report_every=200)]))
    assert stopped.value.args == ("prune",)
    assert model.num_timesteps == 400
    assert ends.ended_at == 400  # learn's own end ran (the other callbacks' too)


def test_a_buffer_is_saved_as_far_as_it_is_filled(tmp_path: Path) -> None:
    model = dqn(buffer_size=1_000_000)  # SB3's default: preallocated, ~50 MB for CartPole
    model.learn(300)
    state = checkpoint_state(model)
    assert len(state["replay_buffer"]) < 200_000
    assert model.replay_buffer is not None
    assert model.replay_buffer.observations.shape[0] == 1_000_000  # the model's own is whole
    without = checkpoint_state(model, replay_buffer=False)
    assert without["replay_buffer"] is None


def test_on_policy_checkpoint_has_no_replay_buffer(tmp_path: Path) -> None:
    trial = RecordingTrial(dir=tmp_path)
    env = gym.make("CartPole-v1")
    model = PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=1, seed=0, device="cpu")
    model.learn(256, callback=SweepspecCallback(trial, report_every=128))
    assert trial.values("timesteps") == [128.0, 256.0]
    assert trial.checkpoints[-1]["replay_buffer"] is None
    restored = restore_model(
        trial.resumed_from(-1), PPO, env, {"learning_rate": 1e-4, "n_epochs": 2}, device="cpu"
    )
    assert restored is not None
    assert (restored.num_timesteps, restored.learning_rate, restored.n_epochs) == (256, 1e-4, 2)


def test_report_every_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="report_every"):
        SweepspecCallback(RecordingTrial(dir=tmp_path), report_every=0)
