"""The environment Ray Tune reads when it is imported: sweepspec's defaults, set before any
module of this package imports Ray (the package's ``__init__`` calls :func:`set_ray_env`)."""

from __future__ import annotations

import os

__all__ = ["RAY_ENV", "set_ray_env"]

#: Set before Ray Tune is imported (setdefault: a user's own value wins).
RAY_ENV = {
    # Ray's periodic experiment snapshot ("auto": at most 5% of the time); exact resume needs
    # one after every step in which a trial saved a checkpoint (ray_driver forces it)
    "TUNE_GLOBAL_CHECKPOINT_S": "auto",
    "RAY_AIR_NEW_OUTPUT": "0",  # with verbose=0: no tables on the terminal
    "TUNE_DISABLE_STRICT_METRIC_CHECKING": "1",  # intermediate reports may lack the metric
    "RAY_TRAIN_ENABLE_V2_MIGRATION_WARNINGS": "0",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # the objective runs in the launch directory
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",  # 0: never warn
    "RAY_USAGE_STATS_ENABLED": "0",
    # Ray's own result loggers (result.json, progress.csv, TensorBoard) write every result of
    # every trial from the driver, and the TensorBoard one imports torch (2 s) at start-up;
    # sweepspec keeps results in ledger.jsonl and trials.csv. A user's own value wins.
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",
}


def set_ray_env() -> None:
    """Ray's settings for sweepspec, where the user set none (before Ray Tune is imported)."""
    for key, value in RAY_ENV.items():
        os.environ.setdefault(key, value)
