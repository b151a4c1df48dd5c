"""Learning-curve objectives for the scheduler benchmark (``benchmarks/asha_vs_fifo.py``).

``sweepspec_examples.toy:curve`` is ASHA's best case: every trial's curve is its final loss
plus the *same* ``1/(step+1)``, so the ranking after one epoch already is the final ranking
and early stopping can never drop the eventual winner. :func:`crossing` is a harder, more
realistic test: power-law curves whose speed depends on the learning rate (larger rates
learn faster but settle higher), so neighbouring curves cross, plus per-epoch noise.
"""

from __future__ import annotations

import math
import random
import time
from typing import Any


def crossing(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """``loss(t) = final(lr) + (t + 1) ** -speed(lr) + noise`` for epochs ``t = 1..epochs``.

    ``u = log10(lr)`` in [-5, -1]: ``final = 0.1 (u + 2.5)^2`` (best at ``lr = 10**-2.5``),
    ``speed = 0.3 + 0.25 (u + 5)`` (0.3 at lr 1e-5, 1.3 at lr 0.1), Gaussian noise with
    ``noise`` (default 0.01) standard deviation, seeded by lr and epoch (reproducible).
    Config: ``lr``, ``epochs`` (default 27), ``step_seconds`` (default 0), ``noise``.
    Reports ``loss`` (noisy) and ``true_loss`` (noise-free) each epoch.
    """
    lr = float(config["lr"])
    epochs = int(config.get("epochs", 27))
    step_seconds = float(config.get("step_seconds", 0.0))
    sigma = float(config.get("noise", 0.01))
    u = math.log10(lr)
    final = 0.1 * (u + 2.5) ** 2
    speed = 0.3 + 0.25 * (u + 5.0)
    rng = random.Random(f"{lr!r}")
    loss = true = math.inf
    for t in range(1, epochs + 1):
        if step_seconds > 0:
            time.sleep(step_seconds)
        true = final + (t + 1) ** -speed
        loss = true + rng.gauss(0.0, sigma)
        trial.report({"loss": loss, "true_loss": true, "epoch": t})
    return {"loss": loss, "true_loss": true}
