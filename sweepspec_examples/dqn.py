"""stable-baselines3's DQN on a gymnasium environment (CartPole by default), with sweepspec's
stable-baselines3 callback: the reward reported every ``report_every`` steps, the model and its
replay buffer as the trial's checkpoint (resume, retries and PBT go on from it).

Config keys (all optional, unknown keys ignored):

* ``env_id`` ("CartPole-v1"), ``total_timesteps`` (20000), ``report_every`` (1000),
  ``checkpoint_every`` (1: a checkpoint with every report; 4: every fourth), ``seed`` (0),
  ``device`` ("cpu");
* every argument of ``stable_baselines3.DQN`` under its own name: ``learning_rate``,
  ``batch_size``, ``buffer_size``, ``gamma``, ``target_update_interval``,
  ``exploration_fraction``, ``exploration_final_eps``, ``train_freq``, ``gradient_steps``,
  ``learning_starts``, ``policy_kwargs`` (e.g. ``{net_arch: [64, 64]}``),
  ``stats_window_size`` (episodes the reported mean is over), ...

A trial restored from a checkpoint takes the config's learning rate and exploration settings
(PBT's mutations) and trains on to ``total_timesteps``.
"""

from __future__ import annotations

import inspect
from typing import Any

import gymnasium as gym
import torch
from stable_baselines3 import DQN

from sweepspec.integrations.sb3 import SweepspecCallback, model_metrics, restore_model

#: What this example changes from stable-baselines3's own defaults (which suit Atari): a short
#: run on CartPole, a mean over the last 20 episodes so that the reward follows the learning.
DEFAULTS: dict[str, Any] = {
    "learning_starts": 1000,
    "exploration_fraction": 0.2,
    "target_update_interval": 500,
    "stats_window_size": 20,
}

#: The arguments ``DQN`` takes from the config (besides the policy and the environment).
DQN_ARGUMENTS = frozenset(inspect.signature(DQN.__init__).parameters) - {
    "self",
    "policy",
    "env",
    "seed",
    "device",
    "verbose",
    "_init_setup_model",
}


def dqn_arguments(config: dict[str, Any]) -> dict[str, Any]:
    """The config's ``DQN`` arguments over :data:`DEFAULTS`; lists in ``policy_kwargs`` as
    lists (a YAML choice may hand over tuples)."""
    out = {**DEFAULTS, **{k: v for k, v in config.items() if k in DQN_ARGUMENTS}}
    policy_kwargs = dict(out.get("policy_kwargs") or {})
    if "net_arch" in policy_kwargs:
        policy_kwargs["net_arch"] = [int(w) for w in policy_kwargs["net_arch"]]
    out["policy_kwargs"] = policy_kwargs
    return out


def train(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Train (or go on training) a DQN agent, reporting through the callback."""
    torch.set_num_threads(1)
    total = int(config.get("total_timesteps", 20_000))
    seed = int(config.get("seed", 0))
    device = str(config.get("device", "cpu"))
    env = gym.make(str(config.get("env_id", "CartPole-v1")))
    try:
        model = restore_model(trial, DQN, env, config, device=device)
        if model is None:
            model = DQN("MlpPolicy", env, seed=seed, device=device, **dqn_arguments(config))
        callback = SweepspecCallback(
            trial,
            report_every=int(config.get("report_every", 1000)),
            checkpoint_every=int(config.get("checkpoint_every", 1)),
        )
        if model.num_timesteps < total:
            model.learn(total - model.num_timesteps, callback=callback, reset_num_timesteps=False)
    finally:
        env.close()
    return model_metrics(model) or {"timesteps": float(model.num_timesteps)}
