"""Fast pure-Python objectives for tests and benchmarks."""

from __future__ import annotations

import math
import time
from typing import Any

#: Iterations of :func:`_spin` that take about one second on one CPU core.
#: Measured on the development machine; see :func:`calibrate`.
ITERS_PER_UNIT = 7_000_000


def quadratic(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """A 2-D bowl with its minimum at ``x=0.3, y=-0.1``; ``optimizer: sgd`` costs 0.1."""
    loss = (float(config["x"]) - 0.3) ** 2 + (float(config["y"]) + 0.1) ** 2
    if config.get("optimizer") == "sgd":
        loss += 0.1
    return {"loss": loss}


def _curve_final(lr: float) -> float:
    """The asymptotic loss of :func:`curve`, best at ``lr = 10**-2.5``."""
    return (math.log10(lr) + 2.5) ** 2


def curve(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """A learning curve ``final(lr) + 1/(step+1)`` reported once per epoch, resumable.

    Config: ``lr`` (required, > 0), ``epochs`` (default 20), ``step_seconds``
    (default 0.0; sleep per epoch to simulate work).
    """
    epochs = int(config.get("epochs", 20))
    step_seconds = float(config.get("step_seconds", 0.0))
    final = _curve_final(float(config["lr"]))
    start = trial.checkpoint.load()["step"] if trial.checkpoint else 0
    loss = final + 1.0 / max(start, 1)
    for step in range(start, epochs):
        if step_seconds > 0:
            time.sleep(step_seconds)
        loss = final + 1.0 / (step + 1)
        trial.report({"loss": loss, "epoch": step + 1}, checkpoint={"step": step + 1})
    return {"loss": loss}


def _spin(iterations: int) -> int:
    """A simple integer arithmetic loop; holds the GIL the whole time."""
    acc = 0
    for i in range(iterations):
        acc = (acc + i * i) % 1_000_003
    return acc


def busy(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Burn a fixed amount of CPU (``work`` units of about 1 s each, default 1.0).

    The amount of work is an iteration count, not a wall-clock duration, so N
    trials in parallel take N times as long as one when they share one core.
    """
    _spin(int(float(config.get("work", 1.0)) * ITERS_PER_UNIT))
    return {"loss": (float(config["x"]) - 0.5) ** 2}


def nested(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """An objective over a nested config, for nested search-space sweeps.

    Reads ``risk_config.risk_weights.{drawdown_pct, volatility_pct}``,
    ``risk_config.max_leverage`` and ``strategy.lookback`` (all but
    ``drawdown_pct`` optional) and returns a ``sharpe`` to maximise plus a ``loss``
    (its negation) to minimise. Best near drawdown 0.2, volatility 0.15, leverage 2,
    lookback 20.
    """
    risk = config["risk_config"]
    weights = risk["risk_weights"]
    drawdown = float(weights["drawdown_pct"])
    volatility = float(weights.get("volatility_pct", 0.15))
    leverage = float(risk.get("max_leverage", 2.0))
    lookback = float(config.get("strategy", {}).get("lookback", 20))
    penalty = (
        (drawdown - 0.2) ** 2
        + (volatility - 0.15) ** 2
        + 0.1 * (leverage - 2.0) ** 2
        + 0.001 * (lookback - 20.0) ** 2
    )
    sharpe = 2.0 - penalty
    return {"sharpe": sharpe, "loss": -sharpe}


def multi(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Two competing metrics: bigger models are more accurate but slower.

    Config: ``width`` (default 64) and ``depth`` (default 2). ``accuracy``
    (maximise) saturates with capacity; ``latency_ms`` (minimise) grows with it.
    """
    width = float(config.get("width", 64))
    depth = float(config.get("depth", 2))
    capacity = width * depth
    accuracy = 0.99 - 0.5 * math.exp(-capacity / 256.0)
    latency_ms = 0.5 + 0.01 * capacity + 0.2 * depth
    return {"accuracy": accuracy, "latency_ms": latency_ms}


def calibrate(seconds: float = 1.0, probe: int = 2_000_000) -> int:
    """Return how many :func:`_spin` iterations take ``seconds`` on this machine."""
    t0 = time.perf_counter()
    _spin(probe)
    elapsed = time.perf_counter() - t0
    return int(probe * seconds / elapsed)
