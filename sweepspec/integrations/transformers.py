"""Report a Hugging Face ``transformers.Trainer``'s evaluations to a sweepspec trial.

    from sweepspec.integrations.transformers import SweepspecCallback

    def train(config, trial):
        ...
        trainer = Trainer(model, args, train_dataset=..., eval_dataset=...,
                          callbacks=[SweepspecCallback(trial)])
        trainer.train()      # ends early, as a stopped trial, when the scheduler says so

Every evaluation (``eval_strategy="steps"`` or ``"epoch"``) is one ``trial.report``, so ASHA,
HyperBand or a median rule can prune at each. It holds the evaluation's metrics as the Trainer
names them (``eval_loss``, ``eval_<metric>``; not its speed figures), ``eval_perplexity`` (the
exponential of ``eval_loss``, likewise for each ``<prefix>_loss``), ``tokens_seen`` (where
``TrainingArguments(include_num_input_tokens_seen=True)``: what a token budget in
``stop.trial`` counts), ``train_loss`` (the last one logged), ``epoch`` and ``global_step``.

When ``trial.report`` answers that the trial must end (the scheduler prunes it, or a
``stop.trial`` rule is reached), the callback does not raise through the training loop: it sets
``control.should_training_stop``, the Trainer finishes the step, leaves its loop and cleans up,
and the callback raises :class:`~sweepspec.trial.TrialStopped` again from ``on_train_end``, so
``trainer.train()`` ends with it and the trial is recorded as stopped. Add the callback last
(``trainer.add_callback`` after the Trainer is built appends it after the Trainer's own) so
that every other callback's ``on_train_end`` has run by then.

Needs ``transformers`` (the ``integrations`` extra); imported only with this module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from sweepspec.trial import Trial, TrialStopped

__all__ = ["SweepspecCallback", "evaluation_metrics"]

#: The Trainer's timing figures of an evaluation: not metrics of the model.
_SPEED_SUFFIXES = ("_runtime", "_samples_per_second", "_steps_per_second")


def _perplexity(loss: float) -> float:
    return math.exp(loss) if loss < 700 else math.inf  # exp overflows past ~709


def evaluation_metrics(
    metrics: Mapping[str, Any],
    state: TrainerState,
    *,
    tokens: bool = False,
    train_loss: float | None = None,
) -> dict[str, float]:
    """What one evaluation reports: its numeric metrics (speed figures left out), a perplexity
    for each ``<prefix>_loss``, ``tokens_seen`` (when ``tokens``), ``train_loss`` (when known),
    ``epoch`` and ``global_step``."""
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            continue
        if key.endswith(_SPEED_SUFFIXES):
            continue
        out[key] = float(value)
        if key.endswith("_loss") and key != "train_loss":
            out[key[: -len("_loss")] + "_perplexity"] = _perplexity(float(value))
    if tokens:
        out.pop("num_input_tokens_seen", None)  # the Trainer's name for the same count
        out["tokens_seen"] = float(state.num_input_tokens_seen)
    if train_loss is not None:
        out.setdefault("train_loss", train_loss)
    if state.epoch is not None:
        out["epoch"] = float(state.epoch)
    out["global_step"] = float(state.global_step)
    return out


class SweepspecCallback(TrainerCallback):
    """Reports each evaluation through ``trial.report`` and stops training cleanly when the
    trial is stopped (see the module's documentation)."""

    def __init__(self, trial: Trial) -> None:
        self.trial = trial
        #: The answer that ended the trial, raised again at the end of training.
        self.stopped: TrialStopped | None = None
        self._train_loss: float | None = None

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.stopped = None  # a Trainer may train more than once

    def on_log(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        logs = kwargs.get("logs") or {}
        loss = logs.get("loss")
        if isinstance(loss, int | float) and not isinstance(loss, bool):
            self._train_loss = float(loss)

    def on_evaluate(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.stopped is not None:
            return  # told to stop already: an evaluation on the way out is not reported
        tokens = args.include_num_input_tokens_seen not in ("no", False, None)
        report = evaluation_metrics(
            kwargs.get("metrics") or {}, state, tokens=tokens, train_loss=self._train_loss
        )
        try:
            self.trial.report(report)
        except TrialStopped as stop:
            self.stopped = stop
            control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        stopped, self.stopped = self.stopped, None
        if stopped is not None:
            raise stopped
