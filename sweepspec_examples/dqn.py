"""A compact DQN (replay buffer, target network, epsilon-greedy) on gymnasium CartPole.

Config keys (all optional, unknown keys ignored):

=====================  =============  ================================================
key                    default        meaning
=====================  =============  ================================================
env_id                 "CartPole-v1"  gymnasium environment (discrete actions, box obs)
total_timesteps        20000          environment steps to train for
learning_rate          1e-3           optimizer step size
optimizer              "adam"         "adam" or "sgd"
momentum               0.0            SGD momentum
gamma                  0.99           discount factor
batch_size             64             replay mini-batch size
hidden                 128            width of the two hidden layers ...
net_arch               --             ... or an explicit list of hidden widths
buffer_size            50000          replay capacity
learning_starts        1000           replay transitions collected before learning
train_freq             1              env steps per gradient step
target_update          500            env steps between target-network syncs
eps_start / eps_end    1.0 / 0.05     epsilon-greedy exploration range
exploration_fraction   0.2            fraction of total_timesteps to decay epsilon over
max_grad_norm          10.0           gradient clipping (<= 0 disables)
double_q               False          use double-DQN targets
eval_every             1000           env steps between reports
seed                   0              torch / env / exploration seed
=====================  =============  ================================================

Every ``eval_every`` steps it reports ``episode_reward_mean`` (mean return of the
last 10 finished training episodes), ``loss`` (last TD loss, once learning has
started), ``timesteps`` and ``episodes``, with a checkpoint holding both networks,
the optimizer, the step count and epsilon. The replay buffer is not checkpointed;
a resumed run refills it before learning again.
"""

from __future__ import annotations

import copy
import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import torch
from torch import nn

RECENT_EPISODES = 10


class ReplayBuffer:
    """A fixed-capacity ring buffer of transitions stored in preallocated tensors."""

    def __init__(self, capacity: int, obs_dim: int) -> None:
        self.capacity = capacity
        self.obs = torch.zeros(capacity, obs_dim)
        self.next_obs = torch.zeros(capacity, obs_dim)
        self.actions = torch.zeros(capacity, dtype=torch.long)
        self.rewards = torch.zeros(capacity)
        self.dones = torch.zeros(capacity)
        self.size = 0
        self._pos = 0

    def add(self, obs: Any, action: int, reward: float, next_obs: Any, done: bool) -> None:
        """Store one transition, overwriting the oldest when full."""
        i = self._pos
        self.obs[i] = torch.as_tensor(obs)
        self.next_obs[i] = torch.as_tensor(next_obs)
        self.actions[i] = action
        self.rewards[i] = reward
        self.dones[i] = float(done)
        self._pos = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """A uniform random batch ``(obs, actions, rewards, next_obs, dones)``."""
        idx = torch.randint(0, self.size, (batch_size,), generator=generator)
        return (
            self.obs[idx],
            self.actions[idx],
            self.rewards[idx],
            self.next_obs[idx],
            self.dones[idx],
        )


def build_q_net(obs_dim: int, n_actions: int, hidden_sizes: list[int]) -> nn.Sequential:
    """An MLP mapping observations to one Q-value per action."""
    layers: list[nn.Module] = []
    width = obs_dim
    for size in hidden_sizes:
        layers += [nn.Linear(width, size), nn.ReLU()]
        width = size
    layers.append(nn.Linear(width, n_actions))
    return nn.Sequential(*layers)


def build_optimizer(params: Any, config: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam or SGD (with ``momentum``) at ``learning_rate``."""
    name = str(config.get("optimizer", "adam")).lower()
    lr = float(config.get("learning_rate", 1e-3))
    if name == "adam":
        # The fused CPU kernel is ~3x faster than the default for these tiny networks.
        return torch.optim.Adam(params, lr=lr, fused=True)
    if name == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=float(config.get("momentum", 0.0)))
    raise ValueError(f"unknown optimizer {name!r}; expected 'adam' or 'sgd'")


@dataclass
class Settings:
    """The config, parsed and defaulted."""

    env_id: str
    total_timesteps: int
    gamma: float
    batch_size: int
    hidden_sizes: list[int]
    buffer_size: int
    learning_starts: int
    train_freq: int
    target_update: int
    eps_start: float
    eps_end: float
    exploration_steps: float
    max_grad_norm: float
    double_q: bool
    eval_every: int
    seed: int

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Settings:
        total = int(config.get("total_timesteps", 20_000))
        arch = config.get("net_arch")
        hidden = [int(h) for h in arch] if arch else [int(config.get("hidden", 128))] * 2
        return cls(
            env_id=str(config.get("env_id", "CartPole-v1")),
            total_timesteps=total,
            gamma=float(config.get("gamma", 0.99)),
            batch_size=max(int(config.get("batch_size", 64)), 1),
            hidden_sizes=hidden,
            buffer_size=max(int(config.get("buffer_size", 50_000)), 1),
            learning_starts=int(config.get("learning_starts", 1000)),
            train_freq=max(int(config.get("train_freq", 1)), 1),
            target_update=max(int(config.get("target_update", 500)), 1),
            eps_start=float(config.get("eps_start", 1.0)),
            eps_end=float(config.get("eps_end", 0.05)),
            exploration_steps=max(float(config.get("exploration_fraction", 0.2)) * total, 1.0),
            max_grad_norm=float(config.get("max_grad_norm", 10.0)),
            double_q=bool(config.get("double_q", False)),
            eval_every=max(int(config.get("eval_every", 1000)), 1),
            seed=int(config.get("seed", 0)),
        )

    def epsilon(self, step: int) -> float:
        """Linearly decayed exploration rate at env step ``step``."""
        frac = min(step / self.exploration_steps, 1.0)
        return self.eps_start + frac * (self.eps_end - self.eps_start)


@dataclass
class Learner:
    """Networks, optimizer and counters: everything a checkpoint restores."""

    q_net: nn.Module
    target_net: nn.Module
    optimizer: torch.optim.Optimizer
    step: int = 0
    episodes: int = 0
    last_loss: float | None = None
    recent_returns: deque[float] = field(default_factory=lambda: deque(maxlen=RECENT_EPISODES))

    def state(self, epsilon: float) -> dict[str, Any]:
        """A detached, picklable copy of the learner state."""
        return {
            "q_net": copy.deepcopy(self.q_net.state_dict()),
            "target_net": copy.deepcopy(self.target_net.state_dict()),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "step": self.step,
            "epsilon": epsilon,
            "episodes": self.episodes,
            "last_loss": self.last_loss,
            "recent_returns": list(self.recent_returns),
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Load a state produced by :meth:`state`."""
        self.q_net.load_state_dict(state["q_net"])
        self.target_net.load_state_dict(state["target_net"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        self.episodes = int(state.get("episodes", 0))
        self.last_loss = state.get("last_loss")
        self.recent_returns.extend(state.get("recent_returns", []))


def td_update(learner: Learner, batch: tuple[torch.Tensor, ...], s: Settings) -> float:
    """One gradient step on the Huber TD error; returns the loss."""
    obs, actions, rewards, next_obs, dones = batch
    with torch.no_grad():
        next_q = learner.target_net(next_obs)
        if s.double_q:
            best = learner.q_net(next_obs).argmax(dim=1, keepdim=True)
            next_value = next_q.gather(1, best).squeeze(1)
        else:
            next_value = next_q.max(dim=1).values
        target = rewards + s.gamma * (1.0 - dones) * next_value
    q = learner.q_net(obs).gather(1, actions.unsqueeze(1)).squeeze(1)
    loss = nn.functional.smooth_l1_loss(q, target)
    learner.optimizer.zero_grad()
    loss.backward()
    if s.max_grad_norm > 0:
        nn.utils.clip_grad_norm_(learner.q_net.parameters(), s.max_grad_norm)
    learner.optimizer.step()
    return float(loss.item())


def metrics_of(learner: Learner, episode_return: float) -> dict[str, float]:
    """Report metrics; falls back to the running episode's return before any finishes."""
    returns = list(learner.recent_returns) or [episode_return]
    metrics = {
        "episode_reward_mean": sum(returns) / len(returns),
        "timesteps": float(learner.step),
        "episodes": float(learner.episodes),
    }
    if learner.last_loss is not None:
        metrics["loss"] = learner.last_loss
    return metrics


def train(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Train a DQN agent, reporting every ``eval_every`` environment steps."""
    torch.set_num_threads(1)
    s = Settings.from_config(config)
    torch.manual_seed(s.seed)
    env = gym.make(s.env_id)
    obs_dim = int(env.observation_space.shape[0])
    n_actions = int(env.action_space.n)
    q_net = build_q_net(obs_dim, n_actions, s.hidden_sizes)
    target_net = copy.deepcopy(q_net)
    learner = Learner(q_net, target_net, build_optimizer(q_net.parameters(), config))
    if trial.checkpoint:
        learner.restore(trial.checkpoint.load())
    # Resumed runs draw fresh (but deterministic) randomness from where they restart.
    run_seed = s.seed + 1_000_003 * learner.step
    rng = random.Random(run_seed)
    sample_gen = torch.Generator().manual_seed(run_seed)
    buffer = ReplayBuffer(min(s.buffer_size, s.total_timesteps), obs_dim)
    obs, _ = env.reset(seed=run_seed)
    episode_return = 0.0
    try:
        while learner.step < s.total_timesteps:
            epsilon = s.epsilon(learner.step)
            if rng.random() < epsilon:
                action = rng.randrange(n_actions)
            else:
                with torch.no_grad():
                    action = int(learner.q_net(torch.as_tensor(obs)).argmax().item())
            next_obs, reward, terminated, truncated, _ = env.step(action)
            buffer.add(obs, action, float(reward), next_obs, bool(terminated))
            episode_return += float(reward)
            obs = next_obs
            if terminated or truncated:
                learner.recent_returns.append(episode_return)
                learner.episodes += 1
                episode_return = 0.0
                obs, _ = env.reset()
            learner.step += 1
            t = learner.step
            if buffer.size >= max(s.learning_starts, s.batch_size) and t % s.train_freq == 0:
                learner.last_loss = td_update(learner, buffer.sample(s.batch_size, sample_gen), s)
            if t % s.target_update == 0:
                learner.target_net.load_state_dict(learner.q_net.state_dict())
            if t % s.eval_every == 0 or t == s.total_timesteps:
                trial.report(
                    metrics_of(learner, episode_return), checkpoint=learner.state(s.epsilon(t))
                )
    finally:
        env.close()
    return metrics_of(learner, episode_return)
