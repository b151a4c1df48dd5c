"""The transformers callback, driven by a real (tiny) ``Trainer``: one report per evaluation,
and a stopped trial ends training after the step it was stopped at, through ``on_train_end``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("transformers")

import torch
from torch.utils.data import Dataset
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    Trainer,
    TrainerCallback,
    TrainerState,
    TrainingArguments,
)

from sweepspec.integrations.transformers import SweepspecCallback, evaluation_metrics
from sweepspec.trial import TrialStopped
from tests.integrations.fakes import RecordingTrial

VOCAB = 16
SEQ = 16
BATCH = 4


class Counting(Dataset[dict[str, torch.Tensor]]):
    """Sequences that count up (mod VOCAB) from a random start: easy to learn."""

    def __init__(self, n: int, seed: int) -> None:
        starts = torch.randint(0, VOCAB, (n, 1), generator=torch.Generator().manual_seed(seed))
        self.data = (starts + torch.arange(SEQ)) % VOCAB

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.data[i], "labels": self.data[i]}


class Ends(TrainerCallback):
    """Records that (and when) training ended, for the clean-stop assertions."""

    def __init__(self) -> None:
        self.ended_at: int | None = None

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self.ended_at = state.global_step


def tiny_trainer(tmp_path: Path, *, max_steps: int = 8, eval_steps: int = 2) -> Trainer:
    torch.manual_seed(0)
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=VOCAB,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            num_key_value_heads=2,
            max_position_embeddings=SEQ,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
        )
    )
    args = TrainingArguments(
        output_dir=str(tmp_path / "out"),
        per_device_train_batch_size=BATCH,
        per_device_eval_batch_size=16,
        learning_rate=1e-2,
        max_steps=max_steps,
        eval_strategy="steps",
        eval_steps=eval_steps,
        logging_steps=eval_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen=True,
        use_cpu=True,
        seed=0,
    )
    return Trainer(
        model=model, args=args, train_dataset=Counting(64, 1), eval_dataset=Counting(16, 2)
    )


def test_every_evaluation_is_reported(tmp_path: Path) -> None:
    trial = RecordingTrial(dir=tmp_path)
    trainer = tiny_trainer(tmp_path)
    trainer.add_callback(SweepspecCallback(trial))
    trainer.train()
    assert trial.values("global_step") == [2.0, 4.0, 6.0, 8.0]
    assert trial.values("tokens_seen") == [2.0 * BATCH * SEQ * k for k in (1, 2, 3, 4)]
    for report in trial.reports:
        assert report["eval_perplexity"] == pytest.approx(math.exp(report["eval_loss"]))
        assert "train_loss" in report
        assert "epoch" in report
        assert not [k for k in report if k.endswith(("_runtime", "_per_second"))]
        assert "num_input_tokens_seen" not in report  # tokens_seen holds it
    losses = trial.values("eval_loss")
    assert losses[-1] < losses[0]  # it learns: the reports are the real evaluations
    assert trial.checkpoints == [None] * 4


@pytest.mark.parametrize("answer", ["prune", "stop"])
def test_a_stopped_trial_ends_training_cleanly(tmp_path: Path, answer: str) -> None:
    trial = RecordingTrial(dir=tmp_path, stop_at=2, answer=answer)
    trainer = tiny_trainer(tmp_path)
    ends = Ends()
    trainer.add_callback(ends)
    callback = SweepspecCallback(trial)
    trainer.add_callback(callback)
    with pytest.raises(TrialStopped) as stopped:
        trainer.train()
    assert stopped.value.args == (answer,)
    assert trainer.state.global_step == 4  # the step of the stopping report, not max_steps
    assert len(trial.reports) == 2
    assert ends.ended_at == 4  # the Trainer's end of training ran (other callbacks too)
    assert callback.stopped is None  # raised once; the callback can train again
    trial.stop_at = None
    trainer.train()  # a new run of the same Trainer reports again from the start
    assert len(trial.reports) == 2 + 4


def test_without_token_counting_there_is_no_tokens_seen(tmp_path: Path) -> None:
    trial = RecordingTrial(dir=tmp_path)
    trainer = tiny_trainer(tmp_path, max_steps=2)
    trainer.args.include_num_input_tokens_seen = "no"
    trainer.add_callback(SweepspecCallback(trial))
    trainer.train()
    assert len(trial.reports) == 1
    assert "tokens_seen" not in trial.reports[0]


def test_evaluation_metrics() -> None:
    state = TrainerState()
    state.global_step, state.epoch, state.num_input_tokens_seen = 10, 0.5, 640
    metrics = {
        "eval_loss": 2.0,
        "eval_code_loss": 800.0,
        "eval_accuracy": 0.25,
        "eval_runtime": 0.1,
        "eval_samples_per_second": 100.0,
        "eval_steps_per_second": 10.0,
        "eval_label": "text",
        "eval_flag": True,
    }
    out = evaluation_metrics(metrics, state, tokens=True, train_loss=1.5)
    assert out == {
        "eval_loss": 2.0,
        "eval_perplexity": pytest.approx(math.exp(2.0)),
        "eval_code_loss": 800.0,
        "eval_code_perplexity": math.inf,
        "eval_accuracy": 0.25,
        "tokens_seen": 640.0,
        "train_loss": 1.5,
        "epoch": 0.5,
        "global_step": 10.0,
    }
