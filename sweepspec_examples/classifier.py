"""A torch MLP classifier on scikit-learn's bundled handwritten digits (``load_digits``: 1797
8x8 images, 10 classes; shipped with scikit-learn, nothing downloaded).

Config keys (all optional, unknown keys ignored): ``learning_rate`` (1e-3), ``width`` (128),
``depth`` (2), ``dropout`` (0.0), ``weight_decay`` (0.0), ``batch_size`` (64), ``optimizer``
("adam" | "sgd"), ``momentum`` (0.0, sgd only), ``epochs`` (20), ``seed`` (0).

Every epoch it reports ``accuracy`` and ``val_loss`` on a fixed held-out fifth of the data,
``train_loss``, ``epoch`` and ``latency_ms``: the time to classify one example (batch size 1,
the median of repeated calls, measured once a trial: it depends on the architecture, not on the
weights), with a checkpoint of the model and the optimizer.
"""

from __future__ import annotations

import copy
import statistics
import time
from typing import Any

import torch
from torch import nn

#: Seed of the train/validation split; the data never depend on the trial's ``seed``.
DATA_SEED = 1234
VAL_FRACTION = 0.2
LATENCY_CALLS = 50


def make_data() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fixed split ``(x_train, y_train, x_val, y_val)``, pixels scaled to [0, 1]."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data, dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target, dtype=torch.long)
    order = torch.randperm(len(x), generator=torch.Generator().manual_seed(DATA_SEED))
    n_val = int(len(x) * VAL_FRACTION)
    val, tr = order[:n_val], order[n_val:]
    return x[tr], y[tr], x[val], y[val]


def build_model(inputs: int, classes: int, width: int, depth: int, dropout: float) -> nn.Module:
    """``depth`` hidden ReLU layers of ``width`` units (dropout after each), then the logits."""
    layers: list[nn.Module] = []
    size = inputs
    for _ in range(max(depth, 1)):
        layers += [nn.Linear(size, width), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        size = width
    layers.append(nn.Linear(size, classes))
    return nn.Sequential(*layers)


def build_optimizer(model: nn.Module, config: dict[str, Any]) -> torch.optim.Optimizer:
    """Adam, or SGD with ``momentum``; both with ``weight_decay``."""
    name = str(config.get("optimizer", "adam")).lower()
    lr = float(config.get("learning_rate", 1e-3))
    weight_decay = float(config.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    if name == "sgd":
        momentum = float(config.get("momentum", 0.0))
        return torch.optim.SGD(
            model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay
        )
    raise ValueError(f"unknown optimizer {name!r}; expected 'adam' or 'sgd'")


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """``(accuracy, mean cross-entropy)``."""
    model.eval()
    logits = model(x)
    loss = nn.functional.cross_entropy(logits, y).item()
    return (logits.argmax(dim=1) == y).float().mean().item(), loss


@torch.no_grad()
def latency_ms(model: nn.Module, x: torch.Tensor, calls: int = LATENCY_CALLS) -> float:
    """Milliseconds to classify one example: the median over ``calls`` single-example calls
    (after a few warm-up calls)."""
    model.eval()
    times = []
    for i in range(calls + 5):
        example = x[i % len(x)].unsqueeze(0)
        start = time.perf_counter()
        model(example).argmax(dim=1)
        if i >= 5:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000.0


def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """One pass over shuffled mini-batches; the mean training loss."""
    model.train()
    order = torch.randperm(len(x), generator=generator)
    total = 0.0
    for start in range(0, len(x), batch_size):
        idx = order[start : start + batch_size]
        loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(idx)
    return total / len(x)


def train(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Train the classifier, reporting every epoch (resumes from ``trial.checkpoint``)."""
    torch.set_num_threads(1)
    seed = int(config.get("seed", 0))
    epochs = int(config.get("epochs", 20))
    batch_size = max(int(config.get("batch_size", 64)), 1)
    x_train, y_train, x_val, y_val = make_data()
    torch.manual_seed(seed)
    model = build_model(
        x_train.shape[1],
        int(y_train.max()) + 1,
        int(config.get("width", 128)),
        int(config.get("depth", 2)),
        float(config.get("dropout", 0.0)),
    )
    optimizer = build_optimizer(model, config)
    start = 0
    if trial.checkpoint:
        state = trial.checkpoint.load()
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["epoch"])
    latency = latency_ms(model, x_val)
    metrics: dict[str, float] = {}
    for epoch in range(start + 1, epochs + 1):
        # seeded per epoch: a resumed trial shuffles (and drops out) as an unbroken one
        torch.manual_seed(seed * 100_003 + epoch)
        shuffle = torch.Generator().manual_seed(seed * 100_003 + epoch)
        train_loss = train_epoch(model, optimizer, x_train, y_train, batch_size, shuffle)
        accuracy, val_loss = evaluate(model, x_val, y_val)
        metrics = {
            "accuracy": accuracy,
            "latency_ms": latency,
            "val_loss": val_loss,
            "train_loss": train_loss,
            "epoch": float(epoch),
        }
        checkpoint = {
            "epoch": epoch,
            "model": {k: v.detach().clone() for k, v in model.state_dict().items()},
            "optimizer": copy.deepcopy(optimizer.state_dict()),
        }
        trial.report(metrics, checkpoint=checkpoint)
    if not metrics:  # trained to ``epochs`` already (resumed from the last checkpoint)
        accuracy, val_loss = evaluate(model, x_val, y_val)
        metrics = {"accuracy": accuracy, "latency_ms": latency, "val_loss": val_loss}
    return metrics
