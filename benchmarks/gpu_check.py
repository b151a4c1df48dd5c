"""The GPU check of the Ray backend: ``sweeps/mlp_gpu.yaml`` on a machine with a CUDA GPU.

Runs the sweep twice through the CLI, with ``gpu: 0.5`` (two trials share each GPU) and with
``gpu: 1`` (one trial a GPU), while a thread polls ``nvidia-smi`` for the processes that hold
GPU memory. Prints a markdown report (also written to ``$OUT/gpu.md`` where ``OUT`` is set):
how many trial processes held the GPU at once, the wall time of each sweep, and each trial's
peak GPU memory (``gpu_memory_mb``, reported by the objective).

    python benchmarks/gpu_check.py [--samples 12] [--epochs 6] [--storage /tmp/gpu-runs]

``--epochs N`` trains each trial for N epochs (ASHA's ``max_t`` N, ``grace_period`` N/3).

It needs a CUDA GPU, torch with CUDA, and sweepspec's ``ray`` extra; on the lent device
machine see ``benchmarks/gpu_check.sh``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC = ROOT / "sweeps" / "mlp_gpu.yaml"


class GpuWatch(threading.Thread):
    """Polls ``nvidia-smi`` for compute processes: ``(seconds, pids, MiB used)`` samples."""

    def __init__(self, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.period = period
        self.samples: list[tuple[float, set[str], float]] = []
        self.done = threading.Event()
        self.start_time = time.monotonic()

    def run(self) -> None:
        query = ["nvidia-smi", "--query-compute-apps=pid,used_memory"]
        query.append("--format=csv,noheader,nounits")
        while not self.done.is_set():
            out = subprocess.run(query, capture_output=True, text=True, check=False).stdout
            pids, used = set(), 0.0
            for line in out.splitlines():
                pid, _, mib = line.partition(",")
                if pid.strip().isdigit():
                    pids.add(pid.strip())
                    used += float(mib or 0)
            self.samples.append((time.monotonic() - self.start_time, pids, used))
            self.done.wait(self.period)

    def stop(self) -> None:
        self.done.set()
        self.join()


def sweep(
    name: str, gpu: float, samples: int, storage: Path, epochs: int | None = None
) -> dict[str, object]:
    """One sweep through the CLI, watched; what the report needs of it."""
    watch = GpuWatch()
    watch.start()
    started = time.monotonic()
    command = [
        sys.executable, "-m", "sweepspec", "run", str(SPEC), f"name={name}",
        f"resources.per_trial.gpu={gpu}", f"trials.num_samples={samples}", f"storage={storage}",
    ]  # fmt: skip
    if epochs:
        command += [
            f"objective.config.epochs={epochs}", f"scheduler.max_t={epochs}",
            f"scheduler.grace_period={max(epochs // 3, 1)}",
        ]  # fmt: skip
    proc = subprocess.run(command, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    watch.stop()
    print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", flush=True)
    run_dir = storage / name
    summary = json.loads((run_dir / "summary.json").read_text()) if proc.returncode == 0 else {}
    with (run_dir / "trials.csv").open() as handle:
        trials = list(csv.DictReader(handle))
    out = os.environ.get("OUT")
    if out:
        shutil.copy(run_dir / "trials.csv", Path(out) / f"{name}-trials.csv")
    all_pids = set().union(*(pids for _, pids, _ in watch.samples)) if watch.samples else set()
    return {
        "name": name,
        "gpu": gpu,
        "rc": proc.returncode,
        "wall": wall,
        "summary": summary,
        "trials": trials,
        "max_procs": max((len(p) for _, p, _ in watch.samples), default=0),
        "distinct_pids": len(all_pids),
        "max_mib": max((m for _, _, m in watch.samples), default=0.0),
        "polls": len(watch.samples),
    }


def report(runs: list[dict[str, object]]) -> str:
    lines = [
        "| per-trial gpu | exit | wall | trials (complete/pruned/failed) | trial processes on the "
        "GPU at once (max) | distinct trial processes | GPU memory, all processes (max) | "
        "best val_accuracy |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for run in runs:
        summary = run["summary"]
        assert isinstance(summary, dict)
        states = summary.get("trials", {})
        best = summary.get("best") or [{}]
        accuracy = best[0].get("metrics", {}).get("val_accuracy", float("nan"))
        lines.append(
            f"| {run['gpu']} | {run['rc']} | {run['wall']:.1f} s | "
            f"{states.get('COMPLETE', '?')}/{states.get('PRUNED', '?')}/{states.get('FAILED', '?')}"
            f" | {run['max_procs']} | {run['distinct_pids']} | {run['max_mib']:.0f} MiB | "
            f"{accuracy:.3f} |"
        )
    lines.append("")
    for run in runs:
        trials = run["trials"]
        assert isinstance(trials, list)
        memory = [float(t["gpu_memory_mb"]) for t in trials if t.get("gpu_memory_mb")]
        durations = [float(t["duration_s"]) for t in trials if t.get("duration_s")]
        if memory and durations:
            lines.append(
                f"- gpu {run['gpu']}: per-trial peak torch memory {min(memory):.0f}-"
                f"{max(memory):.0f} MiB; trial durations {min(durations):.2f}-"
                f"{max(durations):.2f} s ({len(trials)} trials)"
            )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=None, help="the spec's 6 if not given")
    parser.add_argument("--storage", type=Path, default=Path("/tmp/gpu-runs"))
    args = parser.parse_args()
    import torch

    print(f"torch {torch.__version__}, CUDA {torch.version.cuda}, {torch.cuda.get_device_name(0)}")
    runs = [
        sweep("mlp-gpu-half", 0.5, args.samples, args.storage, args.epochs),
        sweep("mlp-gpu-whole", 1, args.samples, args.storage, args.epochs),
    ]
    text = report(runs)
    print(text)
    out = os.environ.get("OUT")
    if out:
        (Path(out) / "gpu.md").write_text(text + "\n")
    return 0 if all(run["rc"] == 0 for run in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
