"""Shared helpers of the Optuna-backend benchmarks (run as scripts, not tests).

* :class:`CpuWatch`: how many cores *other* processes used while we measured (from
  ``/proc/stat`` minus our own and our children's CPU time); a run disturbed by other
  processes is repeated (up to a limit) rather than reported.
* :func:`wait_quiet`: wait until the machine is idle before measuring.
* :func:`run_timed`: wall time (and CPU time, and disturbance) of one subprocess.
* :func:`write_section`: replace one ``## ...`` section of ``docs/benchmarks.md``, keeping the
  other sections (they belong to other benchmarks).
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
PY = sys.executable
SWEEPSPEC = [PY, "-m", "sweepspec"]
#: Other processes may use at most this many cores (on average) during a measured run
#: (``SWEEPSPEC_BENCH_MAX_OTHERS`` overrides it, e.g. 9 to measure on a busy machine anyway).
MAX_OTHERS = float(os.environ.get("SWEEPSPEC_BENCH_MAX_OTHERS", "0.15"))


def nproc() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _proc_stat() -> tuple[float, float]:
    """(busy seconds, total seconds) of all CPUs since boot."""
    with open("/proc/stat") as fh:
        parts = fh.readline().split()[1:]
    values = [int(v) for v in parts[:8]]
    idle = values[3] + values[4]  # idle + iowait
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(values) - idle) / hz, sum(values) / hz


def _own_cpu() -> float:
    """CPU seconds of this process and its waited-for children (and theirs)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


class CpuWatch:
    """Cores used by other processes (on average) between start() and stop()."""

    def __init__(self) -> None:
        self.others = 0.0
        self.own = 0.0
        self.wall = 0.0

    def start(self) -> CpuWatch:
        self._busy0, _ = _proc_stat()
        self._own0 = _own_cpu()
        self._t0 = time.perf_counter()
        return self

    def stop(self) -> CpuWatch:
        busy1, _ = _proc_stat()
        self.wall = time.perf_counter() - self._t0
        self.own = _own_cpu() - self._own0
        others = (busy1 - self._busy0) - self.own
        self.others = max(others, 0.0) / max(self.wall, 1e-9)
        return self


def others_now(sample_s: float = 1.0) -> float:
    watch = CpuWatch().start()
    time.sleep(sample_s)
    return watch.stop().others


def wait_quiet(
    limit: float = MAX_OTHERS, max_wait_s: float = 900.0, sample_s: float = 2.0
) -> float:
    """Wait (up to max_wait_s) until other processes use less than ``limit`` cores."""
    deadline = time.monotonic() + max_wait_s
    busy = others_now(sample_s)
    while busy > limit and time.monotonic() < deadline:
        print(f"  waiting: other processes use {busy:.2f} cores", file=sys.stderr, flush=True)
        time.sleep(5.0)
        busy = others_now(sample_s)
    return busy


@dataclass
class Timed:
    wall: float
    cpu: float
    others: float
    stdout: str = ""
    stderr: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def run_timed(
    argv: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 900.0
) -> Timed:
    """Run ``argv`` to the end; wall time from just before the spawn to the reap."""
    full_env = {**os.environ, **(env or {})}
    watch = CpuWatch().start()
    proc = subprocess.run(
        argv, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout, check=False
    )
    watch.stop()
    if proc.returncode != 0:
        raise SystemExit(
            f"{' '.join(map(str, argv))} failed ({proc.returncode}):\n"
            f"{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
        )
    return Timed(watch.wall, watch.own, watch.others, proc.stdout, proc.stderr)


def undisturbed(measure: Any, *, tries: int = 4, limit: float = MAX_OTHERS) -> Timed:
    """``measure()`` (returning a :class:`Timed`) until other processes stayed under
    ``limit`` cores during it (at most ``tries`` times; the least disturbed run wins)."""
    best: Timed | None = None
    for i in range(tries):
        if i:
            wait_quiet(limit)
        result = measure()
        if best is None or result.others < best.others:
            best = result
        if result.others <= limit:
            return result
        print(
            f"  disturbed run ({result.others:.2f} cores used by others), again",
            file=sys.stderr,
            flush=True,
        )
    assert best is not None
    return best


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float], unit: str = "s", digits: int = 2) -> str:
    return f"min {min(values):.{digits}f} {unit}, max {max(values):.{digits}f} {unit}"


def machine(load_at_start: tuple[float, float, float] | None = None) -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = load_at_start or os.getloadavg()
    end = os.getloadavg()
    return (
        f"{nproc()} CPUs (nproc) of {cpu}; Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}; load average "
        f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at the start, "
        f"{end[0]:.2f} {end[1]:.2f} {end[2]:.2f} at the end"
    )


def today() -> str:
    return _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")


def command_line() -> str:
    script = Path(sys.argv[0]).resolve()
    try:
        shown = script.relative_to(ROOT)
    except ValueError:
        shown = script
    return " ".join([".venv/bin/python", str(shown), *sys.argv[1:]])


def baseline_footer(baseline: str, machine: str) -> list[str]:
    """The closing lines of a speed-up section: the baseline's code, the command, the machine."""
    return [
        "The plain sequential study (the baseline):",
        "",
        "```python",
        baseline.rstrip(),
        "```",
        "",
        f"Command: `{command_line()}`",
        "",
        f"Machine: {machine}. Date: {today()}.",
    ]


def write_section(title: str, body: str, doc: Path = DOC) -> None:
    """Replace the section ``## {title}`` of ``doc`` (appending it when missing)."""
    text = doc.read_text() if doc.exists() else "# Benchmarks\n"
    section = f"## {title}\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + section
    doc.parent.mkdir(parents=True, exist_ok=True)
    doc.write_text(text.rstrip("\n") + "\n")


def publish(title: str, body: str, write: bool) -> None:
    """Print the section ``## {title}``; with ``write`` (``--write``), put it in docs/benchmarks.md
    too (:func:`write_section`)."""
    print(f"## {title}\n\n{body}")
    if write:
        write_section(title, body)
        print(f"wrote the section '{title}' of {DOC.relative_to(ROOT)}", file=sys.stderr)


def speedup_table(reps: int, rows: list[list[str]]) -> str:
    """The table of a speed-up section: one row per variant (whole processes, medians)."""
    header = [f"variant (whole process, median of {reps})", "wall", "speed-up", "efficiency"]
    return table([*header, "notes"], rows)


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def write_spec(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path
