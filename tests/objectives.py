"""Objectives for the end-to-end tests of both backends (loaded by file path, as a user's
``file.py:function``). They keep a ground truth of their own in ``config['log_dir']``: an
append-only JSON-lines file a kind, written with one ``write`` per event."""

from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any


def _log(config: dict[str, Any], name: str, item: dict[str, Any]) -> None:
    """Append ``item`` to ``<config['log_dir']>/<name>.jsonl`` (a test's shared directory)."""
    path = Path(config["log_dir"]) / f"{name}.jsonl"
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(item) + "\n")


def curve(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """A resumable learning curve; logs where each attempt started from. ``crash_at`` (and
    ``crash_once``) arm ``sweepspec.run.crash`` in the trial process, on either backend."""
    if "crash_at" in config:
        os.environ["SWEEPSPEC_CRASH_AT"] = config["crash_at"]
        os.environ["SWEEPSPEC_CRASH_ONCE"] = config["crash_once"]
    epochs = int(config.get("epochs", 8))
    final = (math.log10(config["lr"]) + 2.5) ** 2
    state = trial.checkpoint.load() if trial.checkpoint else {"step": 0, "owner": None}
    if "log_dir" in config:
        _log(
            config,
            "starts",
            {
                "trial": trial.trial_id,
                "from_step": state["step"],
                "owner": state["owner"],
                "lr": config["lr"],
            },
        )
    loss = final + 1.0 / max(state["step"], 1)
    for step in range(state["step"], epochs):
        time.sleep(float(config.get("step_seconds", 0.0)))
        loss = final + 1.0 / (step + 1)
        trial.report({"loss": loss}, checkpoint={"step": step + 1, "owner": trial.trial_id})
    return {"loss": loss}


def record(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Logs the config it received (``configs.jsonl``: at its start and at its end), reports
    ``steps`` times (sleeping ``seconds`` before each), and returns a loss that falls with
    the step: ``(x - 0.3)**2 + (y - 0.1)**2`` (+0.1 for ``opt == 'sgd'``) + 1 / (step + 1).
    Resumes from its checkpoint."""
    _log(config, "configs", {"event": "start", "trial": trial.trial_id, "config": config})
    os.environ.update(config.get("environ", {}))  # arms sweepspec.run.crash in this process
    base = (float(config.get("x", 0.0)) - 0.3) ** 2 + (float(config.get("y", 0.0)) - 0.1) ** 2
    base += 0.1 if config.get("opt") == "sgd" else 0.0
    state = trial.checkpoint.load() if trial.checkpoint else {"step": 0}
    loss = base + 1.0
    for step in range(state["step"], int(config.get("steps", 1))):
        time.sleep(float(config.get("seconds", 0.0)))
        loss = base + 1.0 / (step + 1)
        state = {"step": step + 1, "pad": "x" * int(config.get("checkpoint_pad", 0))}
        trial.report({"loss": loss}, checkpoint=state)
    _log(config, "configs", {"event": "end", "trial": trial.trial_id, "loss": loss})
    return {"loss": loss}


def nap(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Sleeps ``seconds``, then returns a loss of ``x`` (no report, no checkpoint)."""
    time.sleep(float(config.get("seconds", 0.3)))
    return {"loss": (float(config["x"]) - 0.3) ** 2}


def modes(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """One behaviour per ``mode``: ok, raise, flaky (fails its first attempt), nan, hang,
    missing, nockpt (reports without a checkpoint), stubborn (ignores SIGTERM and hangs), hog
    (allocates 16 GiB), flood (100 MB of output)."""
    mode = config["mode"]
    if mode == "raise":
        raise ValueError("boom")
    if mode == "flaky":
        marker = trial.dir / "failed-once"
        if not marker.exists():
            marker.write_text("x")
            raise RuntimeError("first attempt fails")
    if mode == "nan":
        trial.report({"loss": float("nan")})  # never shown to a scheduler
        return None  # the last value is NaN: a failed trial
    if mode == "hang":
        time.sleep(120)
    if mode == "missing":
        return {"other": 1.0}
    if mode == "nockpt":
        trial.report({"loss": 1.0})
    if mode == "stubborn":  # ignores SIGTERM, and hangs
        import signal

        _log(config, "pids", {"mode": mode, "pid": os.getpid()})
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        time.sleep(120)
    if mode == "hog":  # allocates far beyond the trial's memory cap
        hoard = [bytes(2**30) for _ in range(16)]  # (calloc: address space, untouched)
        return {"loss": float(len(hoard))}
    if mode == "flood":  # 100 MB on stdout, and as much again from a process it starts
        import subprocess
        import sys

        line = "x" * 1023 + "\n"
        chunk = line * 1024
        for _ in range(50):
            sys.stdout.write(chunk)
        sys.stdout.write("the last line of the trial's own output\n")
        sys.stdout.flush()
        code = "import sys; sys.stdout.write(('y' * 1023 + '\\n') * 1024 * 50)"
        subprocess.run([sys.executable, "-c", code], check=True)
        print("flood: done", flush=True)
    return {"loss": 0.5}


def barrier(config: dict[str, Any], trial: Any) -> dict[str, Any]:
    """Records CUDA_VISIBLE_DEVICES, then waits until ``n`` trials have started (concurrency)."""
    shared = Path(config["log_dir"])
    (shared / f"started-{trial.trial_id}").write_text(os.environ.get("CUDA_VISIBLE_DEVICES", ""))
    deadline = time.monotonic() + float(config.get("wait", 60))
    together = False
    while time.monotonic() < deadline:
        if len(list(shared.glob("started-*"))) >= int(config["n"]):
            together = True
            break
        time.sleep(0.05)
    return {
        "loss": float(config["x"]),
        "cuda": os.environ.get("CUDA_VISIBLE_DEVICES", "none"),
        "together": int(together),
    }


def where(config: dict[str, Any], trial: Any) -> dict[str, Any]:
    """Where the trial ran: the node label that the test gave each ``ray start`` in its
    environment (Ray workers inherit it) and the pid of the Ray actor (the trial process's
    parent); sleeps so that trials overlap and spread over the nodes."""
    time.sleep(float(config.get("sleep", 1.0)))
    return {
        "loss": float(config["x"]),
        "node": os.environ.get("SWEEPSPEC_TEST_NODE", "?"),
        "actor_pid": os.getppid(),
    }


def torch_cuda(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """A tiny CUDA computation (for the gpu-marked test)."""
    import torch

    x = torch.full((256, 256), float(config["x"]), device="cuda")
    return {"loss": float((x @ x).mean().item()), "device": torch.cuda.get_device_name(0)}


def monsters(config: dict[str, Any], trial: Any) -> dict[str, Any]:
    """Results no record can hold as they are: ``mode`` huge (the metric is an int no float
    holds), extra (a fine metric beside an int too long to print and a megabyte of text),
    odd (an object of its own as a metric)."""
    import sys

    sys.set_int_max_str_digits(0)
    mode = config["mode"]
    if mode == "huge":
        return {"loss": 10**5000}
    if mode == "extra":
        trial.report({"loss": 0.9, "big": 10**5000})
        return {"loss": 0.5, "big": 10**5000, "text": "x" * 1_000_000}
    if mode == "odd":
        return {"loss": 0.25, "what": object()}
    return {"loss": 1.0}


def vandal(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Returns ``x``; the trial whose ``x`` is the smallest of the first few (its
    ``log_dir/vandalised`` marker makes it once only) damages its run: ``act: garble`` writes
    a garbage line into the study's journal, ``act: delete`` deletes the run directory."""
    import shutil

    marker = Path(config["log_dir"]) / "vandalised"
    run_dir = Path(trial.dir).parents[1]
    if int(trial.trial_id) == int(config.get("at", 2)) and not marker.exists():
        marker.write_text(config["act"])
        if config["act"] == "garble":
            with open(run_dir / "study.journal", "ab") as fh:
                fh.write(b"\x00garbage written by the objective\n")
        else:
            shutil.rmtree(run_dir)
    time.sleep(float(config.get("seconds", 0.0)))
    return {"loss": float(config["x"])}


def escapes(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Starts a grandchild that is orphaned, leaves the trial's process group and session
    (``setsid``) and sleeps for minutes (its pid goes to ``log_dir/escaped-*.pid``); ``mode:
    return`` returns at once, ``mode: hang`` hangs until the timeout kills the trial."""
    import subprocess
    import sys

    log = Path(config["log_dir"]) / f"escaped-{trial.trial_id}-{time.time_ns()}.pid"
    code = (
        "import os, sys, time\n"
        "if os.fork():\n    sys.exit(0)\n"  # the grandchild is orphaned at once
        "os.setsid()\n"
        f"open({str(log)!r}, 'a').write(f'{{os.getpid()}}\\n')\n"
        "time.sleep(300)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (not log.exists() or not log.read_text().strip()):
        time.sleep(0.01)
    if config.get("mode") == "hang":
        time.sleep(300)
    return {"loss": float(config.get("x", 0.5))}


def two_metrics(config: dict[str, Any], trial: Any) -> dict[str, float]:
    """Reports ``accuracy = 1 - (x - 0.7)**2 - 0.1 / step`` and ``latency_ms = 10 * y`` (the
    metrics of a score) ``steps`` times, and returns them. ``mode``: ``ok``; ``gap`` (the odd
    steps' reports lack latency_ms); ``nan`` (returns latency_ms NaN); ``overflow`` (returns
    values whose score overflows); ``missing`` (never reports latency_ms); ``own`` (reports a
    ``score`` of its own)."""
    mode = config.get("mode", "ok")
    x, y = float(config.get("x", 0.7)), float(config.get("y", 0.0))
    latency = 10.0 * y
    accuracy = 0.0
    for step in range(1, int(config.get("steps", 1)) + 1):
        time.sleep(float(config.get("seconds", 0.0)))
        accuracy = 1.0 - (x - 0.7) ** 2 - 0.1 / step
        report = {"accuracy": accuracy, "latency_ms": latency}
        if mode == "missing" or (mode == "gap" and step % 2):
            del report["latency_ms"]
        if mode == "own":
            report["score"] = 1.0
        trial.report(report)
    if mode == "nan":
        return {"accuracy": accuracy, "latency_ms": float("nan")}
    if mode == "overflow":
        return {"accuracy": -1.7e308, "latency_ms": 1.7e308}
    if mode == "missing":
        return {"accuracy": accuracy}
    return {"accuracy": accuracy, "latency_ms": latency}
