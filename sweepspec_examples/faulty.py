"""Misbehaving objectives for failure-handling tests.

Only :func:`raises`, :func:`nan`, :func:`inf`, :func:`missing_metric`,
:func:`returns_none_without_report`, :func:`flaky` and :func:`nan_report` are safe
to call in the test process; the others hang, kill or crash their process and
must only run in a worker the engine can terminate.
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import time
from pathlib import Path
from typing import Any


def raises(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Raise ``ValueError("boom")``."""
    raise ValueError("boom")


def nan(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Return a NaN loss."""
    return {"loss": float("nan")}


def inf(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Return an infinite loss."""
    return {"loss": float("inf")}


def missing_metric(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Return metrics without the ``loss`` a sweep usually optimises."""
    return {"other": 1.0}


def returns_none_without_report(config: dict[str, Any], trial: Any) -> None:
    """Neither report nor return any metric."""
    return None


def hangs(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Sleep for an hour (idle hang; needs a timeout)."""
    time.sleep(3600)
    return {"loss": 0.0}


def busy_hang(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Spin forever in pure Python, holding the GIL (needs a hard kill)."""
    x = 0
    while True:
        x = (x + 1) % 1_000_003


def exits(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Terminate the process immediately with exit status 3 (no cleanup)."""
    os._exit(3)


def segfault(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Crash the process with SIGSEGV by reading address 0."""
    ctypes.string_at(0)
    return {"loss": 0.0}


def flaky(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Fail the first call for each ``config["key"]``, succeed afterwards.

    A marker file ``flaky-<key>`` in ``config["marker_dir"]`` records the first
    attempt, so the behaviour holds across processes and retries.
    """
    marker = Path(config["marker_dir"]) / f"flaky-{config['key']}"
    if not marker.exists():
        marker.parent.mkdir(parents=True, exist_ok=True)
        marker.touch()
        raise RuntimeError(f"flaky failure for key {config['key']!r} (first attempt)")
    return {"loss": 1.0}


def nan_report(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Report a finite loss, then NaN at step 2, then a finite loss again."""
    trial.report({"loss": 1.0, "step": 1})
    trial.report({"loss": float("nan"), "step": 2})
    trial.report({"loss": 0.5, "step": 3})
    return {"loss": 0.5}


def spawns_child_and_hangs(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Start a ``sleep 3600`` child process, then hang (tests process-group cleanup)."""
    subprocess.Popen(["sleep", "3600"])
    time.sleep(3600)
    return {"loss": 0.0}


_TRIALS_HERE = [0]


def lifecycle(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Appends ``{"mode", "pid", "parent", "n"}`` (``n``: trials this process has run) to the
    file ``config["log"]``; ``mode`` = ``ok``, ``thread`` (leaves a thread running) or ``exit``
    (``os._exit(3)``)."""
    import json
    import threading

    _TRIALS_HERE[0] += 1
    with open(config["log"], "a", encoding="utf-8") as fh:
        entry = {"mode": config["mode"], "pid": os.getpid(), "parent": os.getppid()}
        fh.write(json.dumps({**entry, "n": _TRIALS_HERE[0]}))
        fh.write("\n")
    if config["mode"] == "thread":
        threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
    if config["mode"] == "exit":
        os._exit(3)
    return {"loss": float(_TRIALS_HERE[0])}
