"""A small torch MLP classifier on a deterministic synthetic two-spirals dataset.

Config keys (all optional): ``lr`` (1e-2), ``hidden`` (64), ``layers`` (2),
``dropout`` (0.0), ``optimizer`` ("adam" | "sgd"), ``momentum`` (0.0, sgd only),
``weight_decay`` (0.0), ``batch_size`` (64), ``epochs`` (10), ``seed`` (0),
``device`` ("cpu"; "cuda" trains on the GPU the trial was given, "auto" on one if there is one).
Unknown keys are ignored. On CUDA the trial also reports ``gpu_memory_mb``, the most GPU memory
it held.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

#: Seed of the dataset generator; the data never depend on the trial's ``seed``.
DATA_SEED = 1234
N_TRAIN = 2000
N_VAL = 500
NOISE = 0.08
TURNS = 1.25


def make_spirals(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaved noisy spirals in the unit disc; labels 0/1, balanced-ish."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    radius = torch.rand(n, generator=generator).sqrt()
    angle = radius * TURNS * 2 * math.pi + labels * math.pi
    points = torch.stack([radius * angle.cos(), radius * angle.sin()], dim=1)
    points = points + NOISE * torch.randn(n, 2, generator=generator)
    return points, labels


def make_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed train/val split: ``(x_train, y_train, x_val, y_val)``."""
    gen = torch.Generator().manual_seed(DATA_SEED)
    x, y = make_spirals(N_TRAIN + N_VAL, gen)
    return x[:N_TRAIN], y[:N_TRAIN], x[N_TRAIN:], y[N_TRAIN:]


def build_model(hidden: int, layers: int, dropout: float) -> nn.Sequential:
    """``layers`` hidden ReLU layers of width ``hidden`` (with optional dropout), 2 logits."""
    modules: list[nn.Module] = []
    width_in = 2
    for _ in range(max(layers, 1)):
        modules += [nn.Linear(width_in, hidden), nn.ReLU()]
        if dropout > 0:
            modules.append(nn.Dropout(dropout))
        width_in = hidden
    modules.append(nn.Linear(width_in, 2))
    return nn.Sequential(*modules)


def build_optimizer(model: nn.Module, config: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam or SGD (with ``momentum``) from the config."""
    name = str(config.get("optimizer", "adam")).lower()
    lr = float(config.get("lr", 1e-2))
    weight_decay = float(config.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        momentum = float(config.get("momentum", 0.0))
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    raise ValueError(f"unknown optimizer {name!r}; expected 'adam' or 'sgd'")


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over shuffled mini-batches; returns the mean training loss."""
    model.train()
    order = torch.randperm(len(x), generator=generator)
    total = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size].to(x.device)
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(x)


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)`` on ``x, y``."""
    model.eval()
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y).item()
    accuracy = (logits.argmax(dim=1) == y).float().mean().item()
    return accuracy, loss


def snapshot(model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> dict[str, Any]:
    """A detached copy of the training state, safe to keep while training continues."""
    return {
        "epoch": epoch,
        "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "optimizer": copy.deepcopy(optimizer.state_dict()),
    }


def pick_device(name: str) -> torch.device:
    """``cpu``, ``cuda`` (an error without a GPU) or ``auto`` (CUDA where there is a GPU)."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("device: cuda, but this trial sees no CUDA GPU")
    return torch.device(name)


def train(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Train the MLP, reporting validation metrics and a checkpoint every epoch."""
    torch.set_num_threads(1)
    device = pick_device(str(config.get("device", "cpu")))
    seed = int(config.get("seed", 0))
    epochs = int(config.get("epochs", 10))
    batch_size = max(int(config.get("batch_size", 64)), 1)
    torch.manual_seed(seed)
    x_train, y_train, x_val, y_val = (t.to(device) for t in make_data())
    model = build_model(
        int(config.get("hidden", 64)),
        int(config.get("layers", 2)),
        float(config.get("dropout", 0.0)),
    ).to(device)
    optimizer = build_optimizer(model, config)
    start = 0
    if trial.checkpoint:
        state = trial.checkpoint.load()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
    metrics: dict[str, float] = {}
    for epoch in range(start + 1, epochs + 1):
        # Seed per epoch so a resumed run shuffles (and drops out) like an unbroken one.
        torch.manual_seed(seed * 100_003 + epoch)
        shuffle = torch.Generator().manual_seed(seed * 100_003 + epoch)
        train_loss = train_epoch(
            model, optimizer, x_train, y_train, batch_size=batch_size, generator=shuffle
        )
        accuracy, val_loss = evaluate(model, x_val, y_val)
        metrics = {
            "val_accuracy": accuracy,
            "val_loss": val_loss,
            "train_loss": train_loss,
            "epoch": epoch,
        }
        if device.type == "cuda":
            metrics["gpu_memory_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
        trial.report(metrics, checkpoint=snapshot(model, optimizer, epoch))
    if not metrics:  # already trained to ``epochs`` (resumed from the last checkpoint)
        accuracy, val_loss = evaluate(model, x_val, y_val)
        metrics = {"val_accuracy": accuracy, "val_loss": val_loss, "epoch": start}
    return metrics
