"""LoRA fine-tuning of a tiny causal language model with transformers' ``Trainer`` and peft,
reported through sweepspec's transformers callback (eval loss and perplexity at every
evaluation, tokens seen for a token budget).

No model hub: the base model is a small Llama built from a config and pretrained once, in
seconds, on Python's documentation as the standard library ships it (``pydoc_data.topics``).
It is cached under the run's storage (``<storage>/.cache/sweepspec_examples/``), built by one
trial while concurrent ones wait on a file lock, written atomically, and reused by every trial
and every later run. Each trial adapts it with LoRA to a different text, the standard library's
own Python source (a real domain shift: prose to code), and is evaluated on source files it
never trains on. Tokens are bytes (a vocabulary of 256).

Config keys (all optional, unknown keys ignored):

* LoRA: ``lora_r`` (8), ``lora_alpha`` (16), ``lora_dropout`` (0.05), ``target_modules``
  (["q_proj", "v_proj"]; the Llama names q/k/v/o_proj, gate/up/down_proj);
* training: ``learning_rate`` (1e-3), ``warmup_ratio`` (0.1), ``weight_decay`` (0.0),
  ``batch_size`` (16), ``max_tokens`` (204_800: training tokens, which set the schedule),
  ``eval_tokens`` (20_480: training tokens between evaluations), ``seed`` (0);
* ``base``: the base model, a mapping of ``hidden_size`` (64), ``num_layers`` (2),
  ``num_heads`` (4), ``seq_len`` (64), ``pretrain_steps`` (300), ``pretrain_batch_size``
  (64), ``pretrain_lr`` (3e-3), ``seed`` (0); another mapping is another cached model;
* ``cache_dir``: where base models are cached (default: ``trial.dir.parents[2] / ".cache"``).

Every report adds ``base_eval_loss``, the base model's loss on the same evaluation text.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import math
import os
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from peft import LoraConfig, get_peft_model
from torch.utils.data import Dataset
from transformers import LlamaConfig, LlamaForCausalLM, Trainer, TrainingArguments
from transformers import logging as hf_logging

from sweepspec.integrations.transformers import SweepspecCallback

#: The standard library's source the adapter trains on, and the files it is evaluated on.
ADAPT_TRAIN_MODULES = ("argparse", "dataclasses", "textwrap", "csv", "shlex", "fractions")
ADAPT_EVAL_MODULES = ("heapq", "json.decoder", "json.encoder")
EVAL_SEQUENCES = 64
VOCAB_SIZE = 256  # bytes


@dataclass(frozen=True)
class BaseSettings:
    """The base model and how it is pretrained (what makes a cached model)."""

    hidden_size: int = 64
    num_layers: int = 2
    num_heads: int = 4
    seq_len: int = 64
    pretrain_steps: int = 300
    pretrain_batch_size: int = 64
    pretrain_lr: float = 3e-3
    seed: int = 0

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BaseSettings:
        given = dict(config.get("base") or {})
        known = {
            k: type(getattr(cls(), k))(v) for k, v in given.items() if k in cls.__annotations__
        }
        return cls(**known)

    def model_config(self) -> LlamaConfig:
        return LlamaConfig(
            vocab_size=VOCAB_SIZE,
            hidden_size=self.hidden_size,
            intermediate_size=self.hidden_size * 2,
            num_hidden_layers=self.num_layers,
            num_attention_heads=self.num_heads,
            num_key_value_heads=self.num_heads,
            max_position_embeddings=self.seq_len,
            bos_token_id=None,
            eos_token_id=None,
            pad_token_id=None,
            tie_word_embeddings=True,
        )


# --------------------------------------------------------------------------- texts


def _encode(text: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(text.encode("utf-8")), dtype=torch.uint8).long()


def base_text() -> str:
    """Python's documentation (the pydoc topics), as the standard library ships it."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[key] for key in sorted(topics))


def module_source(names: tuple[str, ...]) -> str:
    """The source files of standard-library modules, one after the other."""
    parts = []
    for name in names:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            raise RuntimeError(f"the standard library module {name!r} has no source here")
        parts.append(Path(spec.origin).read_text(encoding="utf-8"))
    return "\n\n".join(parts)


def windows(tokens: torch.Tensor, seq_len: int, limit: int | None = None) -> torch.Tensor:
    """Non-overlapping ``seq_len`` windows of ``tokens``; at most ``limit``, evenly spread."""
    n = len(tokens) // seq_len
    out = tokens[: n * seq_len].view(n, seq_len)
    if limit is not None and n > limit:
        out = out[torch.linspace(0, n - 1, limit).long()]
    return out


class Windows(Dataset[dict[str, torch.Tensor]]):
    """Causal-LM examples: each window is its own label (the model shifts them)."""

    def __init__(self, data: torch.Tensor) -> None:
        self.data = data

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.data[i], "labels": self.data[i]}


@torch.no_grad()
def mean_loss(model: torch.nn.Module, data: torch.Tensor, batch_size: int = 64) -> float:
    """The model's mean next-token loss (nats a byte) over the windows in ``data``."""
    model.eval()
    total = 0.0
    for start in range(0, len(data), batch_size):
        batch = data[start : start + batch_size]
        total += float(model(input_ids=batch, labels=batch).loss) * len(batch)
    return total / len(data)


# --------------------------------------------------------------------------- the base model


def _cache_key(s: BaseSettings, text: str) -> str:
    import transformers

    digest = hashlib.sha256()
    digest.update(json.dumps(asdict(s), sort_keys=True).encode())
    digest.update(transformers.__version__.encode())
    digest.update(hashlib.sha256(text.encode("utf-8")).digest())
    return f"tiny-llama-{digest.hexdigest()[:16]}"


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (other processes wait), released on exit or death."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def pretrain(s: BaseSettings, text: str) -> LlamaForCausalLM:
    """A fresh model trained ``pretrain_steps`` steps on random windows of ``text``."""
    torch.manual_seed(s.seed)
    model = LlamaForCausalLM(s.model_config())
    tokens = _encode(text)
    generator = torch.Generator().manual_seed(s.seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=s.pretrain_lr, weight_decay=0.01)
    steps = max(s.pretrain_steps, 1)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=s.pretrain_lr, total_steps=steps, pct_start=0.1
    )
    model.train()
    for _ in range(steps):
        starts = torch.randint(
            0, len(tokens) - s.seq_len, (s.pretrain_batch_size,), generator=generator
        )
        batch = torch.stack([tokens[i : i + s.seq_len] for i in starts.tolist()])
        loss = model(input_ids=batch, labels=batch).loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
    return model


def base_model(
    s: BaseSettings, cache_dir: Path, eval_data: torch.Tensor
) -> tuple[Path, dict[str, Any]]:
    """The cached base model's directory and its ``meta.json``, built first if missing."""
    text = base_text()
    key = _cache_key(s, text)
    final = cache_dir / key
    meta_file = final / "meta.json"
    if not meta_file.exists():
        with _locked(cache_dir / f"{key}.lock"):
            if not meta_file.exists():  # nobody built it while we waited
                model = pretrain(s, text)
                held_out = windows(_encode(text), s.seq_len, EVAL_SEQUENCES)
                meta = {
                    "settings": asdict(s),
                    "built_by_pid": os.getpid(),
                    "base_text_loss": mean_loss(model, held_out),
                    "base_eval_loss": mean_loss(model, eval_data),
                }
                tmp = cache_dir / f"{key}.tmp-{os.getpid()}"
                shutil.rmtree(tmp, ignore_errors=True)
                model.save_pretrained(tmp)
                (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
                shutil.rmtree(final, ignore_errors=True)  # a torn earlier attempt, if any
                os.replace(tmp, final)  # readers see no model or all of it
    meta: dict[str, Any] = json.loads(meta_file.read_text(encoding="utf-8"))
    return final, meta


# --------------------------------------------------------------------------- a trial


class WithBaseline:
    """The trial, with the base model's loss added to every report (so that trials.csv and
    MLflow show it beside eval_loss, also for a trial that a stop rule ends)."""

    def __init__(self, trial: Any, baseline: dict[str, float]) -> None:
        self._trial = trial
        self._baseline = baseline

    def report(self, metrics: dict[str, float], checkpoint: Any = None) -> None:
        self._trial.report({**metrics, **self._baseline}, checkpoint=checkpoint)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._trial, name)


def _cache_dir(config: dict[str, Any], trial: Any) -> Path:
    if config.get("cache_dir"):
        return Path(str(config["cache_dir"]))
    return Path(trial.dir).parents[2] / ".cache" / "sweepspec_examples"


def training_arguments(config: dict[str, Any], trial: Any, seq_len: int) -> TrainingArguments:
    """The Trainer's arguments: ``max_tokens`` of training, an evaluation every ``eval_tokens``."""
    batch_size = max(int(config.get("batch_size", 16)), 1)
    tokens_per_step = batch_size * seq_len
    max_steps = max(int(config.get("max_tokens", 204_800)) // tokens_per_step, 1)
    eval_steps = max(int(config.get("eval_tokens", 20_480)) // tokens_per_step, 1)
    seed = int(config.get("seed", 0))
    return TrainingArguments(
        output_dir=str(Path(trial.dir) / "trainer"),
        per_device_train_batch_size=batch_size,
        per_device_eval_batch_size=EVAL_SEQUENCES,
        learning_rate=float(config.get("learning_rate", 1e-3)),
        warmup_steps=float(config.get("warmup_ratio", 0.1)),  # below 1: a share of max_steps
        weight_decay=float(config.get("weight_decay", 0.0)),
        lr_scheduler_type="linear",
        max_steps=max_steps,
        eval_strategy="steps",
        eval_steps=eval_steps,
        logging_steps=eval_steps,
        save_strategy="no",
        report_to="none",
        disable_tqdm=True,
        include_num_input_tokens_seen=True,
        use_cpu=True,
        dataloader_num_workers=0,
        seed=seed,
        data_seed=seed,
    )


def train(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Adapt the (cached) base model to Python source with LoRA; report every evaluation."""
    torch.set_num_threads(1)
    hf_logging.set_verbosity_error()
    s = BaseSettings.from_config(config)
    train_data = windows(_encode(module_source(ADAPT_TRAIN_MODULES)), s.seq_len)
    eval_data = windows(_encode(module_source(ADAPT_EVAL_MODULES)), s.seq_len, EVAL_SEQUENCES)
    path, meta = base_model(s, _cache_dir(config, trial), eval_data)
    torch.manual_seed(int(config.get("seed", 0)))
    lora = LoraConfig(
        r=int(config.get("lora_r", 8)),
        lora_alpha=int(config.get("lora_alpha", 16)),
        lora_dropout=float(config.get("lora_dropout", 0.05)),
        target_modules=[str(m) for m in config.get("target_modules", ["q_proj", "v_proj"])],
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(LlamaForCausalLM.from_pretrained(path), lora)
    trainer = Trainer(
        model=model,
        args=training_arguments(config, trial, s.seq_len),
        train_dataset=Windows(train_data),
        eval_dataset=Windows(eval_data),
    )
    baseline = {"base_eval_loss": float(meta["base_eval_loss"])}
    # last: the Trainer's own callbacks end first
    trainer.add_callback(SweepspecCallback(WithBaseline(trial, baseline)))
    trainer.train()  # raises TrialStopped when the trial is stopped (pruned, or a budget)
    loss = mean_loss(model, eval_data)  # what the last step left (no extra report)
    return {"eval_loss": loss, "eval_perplexity": math.exp(loss), **baseline}
