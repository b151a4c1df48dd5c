"""Report a stable-baselines3 agent's reward to a sweepspec trial, and checkpoint it.

    from stable_baselines3 import DQN
    from sweepspec.integrations.sb3 import SweepspecCallback, restore_model

    def train(config, trial):
        env = gym.make("CartPole-v1")
        model = restore_model(trial, DQN, env, config) or DQN("MlpPolicy", env, **config)
        model.learn(
            total_timesteps - model.num_timesteps,     # the rest, after a resume
            callback=SweepspecCallback(trial, report_every=1000),
            reset_num_timesteps=False,
        )

Every ``report_every`` environment steps, :class:`SweepspecCallback` reports
``episode_reward_mean`` (the mean return of the episodes in the model's episode buffer: the
last ``stats_window_size`` finished ones), ``episode_length_mean``, ``timesteps``, ``episodes``,
``exploration_rate`` (DQN) and ``loss`` (the last training loss, where the algorithm logged
one), with a checkpoint (at every ``checkpoint_every``-th report, every one by default): the
model as ``model.save`` writes it, its replay buffer (off-policy algorithms; only as far as it
is filled) and the episode buffer, as bytes. Until the first episode ends there is no reward
to report, and such a step is skipped. When the trial is stopped (pruned, or a stop rule), the
callback ends ``learn`` cleanly and raises :class:`~sweepspec.trial.TrialStopped` again from
its ``on_training_end``.

:func:`restore_model` loads that checkpoint (a retry, a resumed run, a PBT exploit) with the
trial's current config applied: the hyperparameters in :data:`RESTORED_HYPERPARAMETERS`
(learning rate, exploration, ...) take the config's values, so that PBT's mutations take effect
from the restored step on; the network and the replay buffer keep the checkpoint's.

Needs ``stable-baselines3`` (the ``integrations`` extra); imported only with this module.
"""

from __future__ import annotations

import copy
import io
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.off_policy_algorithm import OffPolicyAlgorithm

from sweepspec.trial import Trial, TrialStopped

__all__ = [
    "RESTORED_HYPERPARAMETERS",
    "SweepspecCallback",
    "checkpoint_state",
    "model_metrics",
    "restore_model",
]

AlgorithmT = TypeVar("AlgorithmT", bound=BaseAlgorithm)

#: Hyperparameters that :func:`restore_model` takes from the trial's config: attributes that the
#: algorithm reads again when a saved model is set up (schedules are rebuilt from them), none
#: that shapes a network or a buffer.
RESTORED_HYPERPARAMETERS = frozenset(
    {
        "learning_rate",
        "gamma",
        "batch_size",
        "tau",
        "train_freq",
        "gradient_steps",
        "target_update_interval",
        "learning_starts",
        "exploration_fraction",
        "exploration_initial_eps",
        "exploration_final_eps",
        "max_grad_norm",
        "gae_lambda",
        "n_epochs",
        "clip_range",
        "vf_coef",
    }
)


def _trimmed(buffer: Any) -> tuple[Any, list[str]]:
    """A shallow copy of a replay buffer that is not full yet, with its arrays cut to the
    transitions it holds (a buffer preallocates all of them: 1e6 by default), and the names of
    the arrays cut (``observations`` or, for dict observations, ``observations.<key>``)."""
    size, used = int(buffer.buffer_size), int(buffer.pos)
    if buffer.full or used >= size:
        return buffer, []
    out = copy.copy(buffer)
    names: list[str] = []
    for name, value in vars(buffer).items():
        if isinstance(value, np.ndarray) and value.shape[:1] == (size,):
            setattr(out, name, value[:used])
            names.append(name)
        elif isinstance(value, dict):
            cut = dict(value)
            for key, item in value.items():
                if isinstance(item, np.ndarray) and item.shape[:1] == (size,):
                    cut[key] = item[:used]
                    names.append(f"{name}.{key}")
            setattr(out, name, cut)
    return out, names


def _padded(buffer: Any, names: list[str]) -> None:
    """Undo :func:`_trimmed` in place: each cut array back to ``buffer_size`` rows."""
    size = int(buffer.buffer_size)

    def pad(array: np.ndarray) -> np.ndarray:
        full = np.zeros((size, *array.shape[1:]), dtype=array.dtype)
        full[: len(array)] = array
        return full

    for name in names:
        attr, _, key = name.partition(".")
        if key:
            getattr(buffer, attr)[key] = pad(getattr(buffer, attr)[key])
        else:
            setattr(buffer, attr, pad(getattr(buffer, attr)))


def checkpoint_state(model: BaseAlgorithm, *, replay_buffer: bool = True) -> dict[str, Any]:
    """A picklable snapshot of ``model``: ``model`` (the bytes of ``model.save``),
    ``replay_buffer`` (the bytes of ``save_replay_buffer``, cut to the transitions it holds, or
    None), ``ep_info_buffer`` (the finished episodes the reward is averaged over) and
    ``num_timesteps``."""
    saved = io.BytesIO()
    model.save(saved)
    buffer: bytes | None = None
    trimmed: list[str] = []
    if replay_buffer and isinstance(model, OffPolicyAlgorithm) and model.replay_buffer is not None:
        whole = model.replay_buffer
        model.replay_buffer, trimmed = _trimmed(whole)
        try:
            data = io.BytesIO()
            model.save_replay_buffer(data)
        finally:
            model.replay_buffer = whole
        buffer = data.getvalue()
    return {
        "model": saved.getvalue(),
        "replay_buffer": buffer,
        "replay_buffer_trimmed": trimmed,
        "ep_info_buffer": list(model.ep_info_buffer or ()),
        "num_timesteps": int(model.num_timesteps),
    }


def restore_model(
    trial: Trial,
    algorithm: type[AlgorithmT],
    env: Any,
    config: Mapping[str, Any] | None = None,
    *,
    hyperparameters: Iterable[str] = RESTORED_HYPERPARAMETERS,
    device: str = "auto",
) -> AlgorithmT | None:
    """The model in ``trial.checkpoint`` (saved by :class:`SweepspecCallback`), on ``env``, with
    the ``hyperparameters`` that ``config`` holds applied; None when the trial has none.

    Continue it with ``model.learn(total - model.num_timesteps, reset_num_timesteps=False)``:
    the step count, the exploration schedule's progress and the episode buffer go on."""
    if trial.checkpoint is None:
        return None
    state = trial.checkpoint.load()
    wanted = set(hyperparameters)
    overrides = {k: v for k, v in (config or {}).items() if k in wanted}
    model = algorithm.load(
        io.BytesIO(state["model"]), env=env, device=device, custom_objects=overrides
    )
    buffer = state.get("replay_buffer")
    if buffer is not None and isinstance(model, OffPolicyAlgorithm):
        model.load_replay_buffer(io.BytesIO(buffer))
        _padded(model.replay_buffer, list(state.get("replay_buffer_trimmed", ())))
    window = int(getattr(model, "_stats_window_size", 100))
    model.ep_info_buffer = deque(state.get("ep_info_buffer", ()), maxlen=window)
    return model


def _mean(values: list[float]) -> float:
    return sum(values) / len(values)


def model_metrics(model: BaseAlgorithm) -> dict[str, float] | None:
    """``episode_reward_mean`` and ``episode_length_mean`` over the model's episode buffer,
    ``timesteps``, ``episodes`` and (DQN) ``exploration_rate``; None while no episode has
    finished."""
    episodes = list(model.ep_info_buffer or ())
    if not episodes:
        return None
    out = {
        "episode_reward_mean": _mean([float(e["r"]) for e in episodes]),
        "episode_length_mean": _mean([float(e["l"]) for e in episodes]),
        "timesteps": float(model.num_timesteps),
        "episodes": float(getattr(model, "_episode_num", len(episodes))),
    }
    exploration = getattr(model, "exploration_rate", None)
    if isinstance(exploration, int | float):
        out["exploration_rate"] = float(exploration)
    return out


class SweepspecCallback(BaseCallback):
    """Reports every ``report_every`` environment steps through ``trial.report``, with the
    model as its checkpoint at every ``checkpoint_every``-th report (0: never;
    ``replay_buffer=False``: without the replay buffer, smaller, but a restored off-policy
    model then learns from its newest steps only)."""

    def __init__(
        self,
        trial: Trial,
        report_every: int = 1000,
        *,
        checkpoint_every: int = 1,
        replay_buffer: bool = True,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        if report_every < 1:
            raise ValueError(f"report_every >= 1 must hold, but got {report_every}")
        if checkpoint_every < 0:
            raise ValueError(f"checkpoint_every >= 0 must hold, but got {checkpoint_every}")
        self.trial = trial
        self.report_every = report_every
        self.checkpoint_every = checkpoint_every
        self.replay_buffer = replay_buffer
        self._reports = 0
        #: The answer that ended the trial, raised again at the end of ``learn``.
        self.stopped: TrialStopped | None = None
        self._next = report_every

    def _on_training_start(self) -> None:
        self.stopped = None
        # the first multiple of report_every past the model's steps (a restored model has some)
        self._next = (self.model.num_timesteps // self.report_every + 1) * self.report_every

    def metrics(self) -> dict[str, float] | None:
        """This step's report (:func:`model_metrics` and the last training ``loss``), or None
        while no episode has finished."""
        out = model_metrics(self.model)
        loss = self.logger.name_to_value.get("train/loss")
        if out is not None and isinstance(loss, int | float):
            out["loss"] = float(loss)
        return out

    def _on_step(self) -> bool:
        if self.num_timesteps < self._next:
            return True
        metrics = self.metrics()
        if metrics is None:
            return True  # nothing to report yet: try again at the next step
        while self._next <= self.num_timesteps:
            self._next += self.report_every
        self._reports += 1
        due = self.checkpoint_every > 0 and self._reports % self.checkpoint_every == 0
        state = checkpoint_state(self.model, replay_buffer=self.replay_buffer) if due else None
        try:
            self.trial.report(metrics, checkpoint=state)
        except TrialStopped as stop:
            self.stopped = stop
            return False  # learn() leaves its loop and calls on_training_end
        return True

    def _on_training_end(self) -> None:
        stopped, self.stopped = self.stopped, None
        if stopped is not None:
            raise stopped
