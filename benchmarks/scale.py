"""Scale: does a trial cost the same whether it is the 10th or the 10,000th?

* **No-op trials** (``sweepspec_examples.toy:quadratic``, random searcher, 2 workers, the
  journal file): ``sweepspec run`` against the reference, two processes of a plain Optuna
  study on one journal file (``study.optimize`` of the same function, half the trials each).
  Per-trial time by sixths of the run, from the trials' completion times in the journal, and
  the whole wall time (start-up included).
* **TPE** at 2,000 trials: the same, with TPE's own time (ask + tell of a plain in-memory study
  of the same space and size, one process) split out.
* **Trials of 50 ms**: 2,000 of them on the Optuna backend (2 workers) and on the Ray
  backend (2 CPUs): the whole time against the theoretical ``trials * 50 ms / 2``, and the
  per-trial time by sixths (Ray: from trials.csv's end times).
* **Reading a large run**: ``status``, ``results --no-plots`` and a resume (``run`` of the
  finished run) on the largest no-op run.

Goals (issue 13, 2 cores): the last sixth within 1.2x of the first; the whole run within 1.3x
of the plain two-process study at 3,000 and 10,000 trials; 2,000 trials of 50 ms within 10%
of 50 s; status/results/resume of 10,000 trials in a few seconds.

    .venv/bin/python benchmarks/scale.py [--trials 1000 3000 10000] [--sleep 2000]
        [--ray 2000] [--write]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

TITLE = "Scale: many short trials"

SPEC = """\
sweepspec: 1
name: {name}
storage: {storage}
objective:
  function: {function}
  metric: loss
  mode: min
  config: {{seconds: {seconds}}}
space:
  x: {{uniform: [-1.0, 1.0]}}
  y: {{uniform: [-1.0, 1.0]}}
searcher: {{type: {searcher}, seed: 0}}
trials: {{num_samples: {trials}}}
resources: {{max_concurrent: 2, per_trial: {{cpu: 1}}}}
{backend}
"""

PLAIN = """\
import sys
import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage

optuna.logging.set_verbosity(optuna.logging.WARNING)
path, name, n, sampler = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
storage = JournalStorage(JournalFileBackend(path))
study = optuna.create_study(study_name=name, storage=storage, load_if_exists=True,
    sampler=optuna.samplers.TPESampler() if sampler == "tpe" else optuna.samplers.RandomSampler())
study.optimize(lambda t: (t.suggest_float("x", -1, 1) - 0.3) ** 2
               + (t.suggest_float("y", -1, 1) - 0.1) ** 2, n_trials=n)
"""

PURE_SAMPLER = """\
import sys, time
import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)
n = int(sys.argv[1])
study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
t0 = time.perf_counter()
marks = []
for i in range(n):
    t = study.ask()
    v = (t.suggest_float("x", -1, 1) - 0.3) ** 2 + (t.suggest_float("y", -1, 1) - 0.1) ** 2
    study.tell(t, v)
    marks.append(time.perf_counter() - t0)
print(" ".join(f"{m:.6f}" for m in marks))
"""

SLEEPER = """\
import time


def nap(config, trial):
    time.sleep(float(config["seconds"]))
    return {"loss": (config["x"] - 0.3) ** 2}
"""


def completion_times(journal: Path) -> list[float]:
    """The trials' completion times (seconds since the epoch) in a journal file."""
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(journal)))
    out: list[float] = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        out += [t.datetime_complete.timestamp() for t in study.trials if t.datetime_complete]
    return sorted(out)


def sixths(times: list[float]) -> list[float]:
    """Milliseconds per trial in each sixth of the run (by completion order)."""
    n = len(times)
    k = max(n // 6, 1)
    out = []
    for i in range(6):
        a, b = i * k, min((i + 1) * k, n - 1)
        out.append((times[b] - times[a]) / max(b - a, 1) * 1000)
    return out


def csv_completion_times(trials_csv: Path) -> list[float]:
    """The trials' end times (seconds since the epoch) from a run's trials.csv (either
    backend writes ``ended_at``, ISO 8601 UTC)."""
    import csv
    import datetime as dt

    with trials_csv.open(newline="") as fh:
        ends = [row["ended_at"] for row in csv.DictReader(fh) if row.get("ended_at")]
    return sorted(dt.datetime.fromisoformat(e).timestamp() for e in ends)


def sweepspec_run(
    tmp: Path, trials: int, searcher: str = "random", seconds: float = 0.0
) -> dict[str, Any]:
    name = f"scale{trials}{searcher}{'sleep' if seconds else ''}"
    spec = tmp / f"{name}.yaml"
    if seconds:
        (tmp / "sleeper.py").write_text(SLEEPER)
    spec.write_text(
        SPEC.format(
            name=name,
            storage=tmp / "runs",
            function="sleeper.py:nap" if seconds else "sweepspec_examples.toy:quadratic",
            seconds=seconds,
            searcher=searcher,
            trials=trials,
            backend="",
        )
    )
    r = c.run_timed([*c.SWEEPSPEC, "run", str(spec)], tmp, timeout=3600)
    times = completion_times(tmp / "runs" / name / "study.journal")
    assert len(times) == trials, (len(times), trials)
    out = {"wall": r.wall, "sixths": sixths(times), "others": r.others, "spec": spec}
    if seconds:
        out["ideal"] = trials * seconds / 2
    return out


def plain_run(tmp: Path, trials: int, sampler: str = "random") -> dict[str, Any]:
    script = tmp / "plain.py"
    script.write_text(PLAIN)
    journal = tmp / f"plain{trials}{sampler}.journal"
    name = f"plain{trials}"
    import subprocess

    watch = c.CpuWatch().start()
    half = [trials // 2, trials - trials // 2]
    procs = [
        subprocess.Popen([c.PY, str(script), str(journal), name, str(n), sampler]) for n in half
    ]
    for p in procs:
        assert p.wait(timeout=3600) == 0
    watch.stop()
    times = completion_times(journal)
    assert len(times) == trials
    return {"wall": watch.wall, "sixths": sixths(times), "others": watch.others}


def pure_tpe_ms(tmp: Path, trials: int) -> list[float]:
    script = tmp / "pure.py"
    script.write_text(PURE_SAMPLER)
    r = c.run_timed([c.PY, str(script), str(trials)], tmp, timeout=3600)
    marks = [float(x) for x in r.stdout.split()]
    return sixths(marks)


def reading(tmp: Path, spec: Path) -> dict[str, float]:
    out = {}
    for label, args in (
        ("status", ["status", str(spec)]),
        ("results", ["results", str(spec), "--no-plots"]),
        ("resume", ["run", str(spec)]),
    ):
        out[label] = c.run_timed([*c.SWEEPSPEC, *args], tmp, timeout=600).wall
    return out


def ray_run(tmp: Path, trials: int, seconds: float) -> dict[str, Any]:
    (tmp / "sleeper.py").write_text(SLEEPER)
    name = f"ray{trials}"
    spec = tmp / f"{name}.yaml"
    spec.write_text(
        SPEC.format(
            name=name,
            storage=tmp / "runs",
            function="sleeper.py:nap",
            seconds=seconds,
            searcher="random",
            trials=trials,
            backend="backend: {type: ray}",
        )
    )
    r = c.run_timed(
        [*c.SWEEPSPEC, "run", str(spec)], tmp, env={"RAY_AUTH_MODE": "disabled"}, timeout=3600
    )
    ideal = trials * seconds / 2
    times = csv_completion_times(tmp / "runs" / name / "trials.csv")
    assert len(times) == trials, (len(times), trials)
    return {"wall": r.wall, "ideal": ideal, "others": r.others, "sixths": sixths(times)}


def render(result: dict[str, Any], machine: str) -> str:
    lines = [
        "No-op trials (`sweepspec_examples.toy:quadratic`), random searcher, 2 workers, the",
        "journal file; per-trial time in each sixth of the run (from the journal's completion",
        "times) and the whole wall time, start-up included. Reference: two processes of a plain",
        "Optuna study on one journal file, in the same run of this script.",
        "",
        "| trials | run | 1st sixth | 2nd | 3rd | 4th | 5th | 6th | last / first | whole run |"
        " vs plain |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in result["noop"]:
        for label, key in (("`sweepspec run`", "sweepspec"), ("plain study x2", "plain")):
            r = row[key]
            s = r["sixths"]
            ratio = r["wall"] / row["plain"]["wall"]
            lines.append(
                f"| {row['trials']} | {label} | "
                + " | ".join(f"{v:.2f} ms" for v in s)
                + f" | {s[-1] / s[0]:.2f}x | {r['wall']:.1f} s | "
                + (f"{ratio:.2f}x |" if key == "sweepspec" else "1 |")
            )
    if result.get("tpe"):
        t = result["tpe"]
        engine = [a - b for a, b in zip(t["sweepspec"]["sixths"], t["pure"], strict=True)]
        lines += [
            "",
            f"TPE at {t['trials']} trials (2 workers): per-trial time by sixths; TPE's own ask +"
            " tell (a plain in-memory study, one process) and what is left for the engine:",
            "",
            "| | 1st sixth | 2nd | 3rd | 4th | 5th | 6th | whole run |",
            "|---|---|---|---|---|---|---|---|",
            "| `sweepspec run` | "
            + " | ".join(f"{v:.2f} ms" for v in t["sweepspec"]["sixths"])
            + f" | {t['sweepspec']['wall']:.1f} s |",
            "| TPE's own ask + tell | " + " | ".join(f"{v:.2f} ms" for v in t["pure"]) + " | |",
            "| the rest (engine, 2 workers) | "
            + " | ".join(f"{v:.2f} ms" for v in engine)
            + " | |",
            "| plain study x2 | "
            + " | ".join(f"{v:.2f} ms" for v in t["plain"]["sixths"])
            + f" | {t['plain']['wall']:.1f} s |",
        ]
    if result.get("reading"):
        rd = result["reading"]
        lines += [
            "",
            f"Reading the {rd['trials']}-trial run: `status` {rd['status']:.2f} s, `results"
            f" --no-plots` {rd['results']:.2f} s, a resume of the finished run"
            f" {rd['resume']:.2f} s (each a fresh process, start-up included).",
        ]
    if result.get("sleep"):
        sl = result["sleep"]
        lines += [
            "",
            f"Optuna backend (the default): {sl['trials']} trials of {sl['seconds'] * 1000:.0f}"
            f" ms on 2 workers: {sl['wall']:.1f} s against the theoretical {sl['ideal']:.1f} s"
            f" ({sl['wall'] / sl['ideal'] - 1:+.1%}, start-up included; goal: within 10%);"
            " per trial by sixths: " + ", ".join(f"{v:.1f}" for v in sl["sixths"]) + " ms.",
        ]
    if result.get("ray"):
        ry = result["ray"]
        s = ry["sixths"]
        lines += [
            "",
            f"Ray backend: {ry['trials']} trials of {ry['seconds'] * 1000:.0f} ms on 2 CPUs:"
            f" {ry['wall']:.1f} s against the theoretical {ry['ideal']:.1f} s"
            f" ({ry['wall'] / ry['ideal'] - 1:+.0%}, Ray's start-up included); per trial by"
            " sixths (from trials.csv's end times): "
            + ", ".join(f"{v:.0f}" for v in s)
            + f" ms, last / first {s[-1] / s[0]:.2f}x.",
        ]
    lines += ["", f"Command: `{c.command_line()}`", "", f"Machine: {machine}. Date: {c.today()}."]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, nargs="+", default=[1000, 3000, 10000])
    parser.add_argument("--tpe", type=int, default=2000, help="TPE trials (0: skip)")
    parser.add_argument("--ray", type=int, default=2000, help="Ray trials (0: skip)")
    parser.add_argument("--ray-seconds", type=float, default=0.05)
    parser.add_argument(
        "--sleep", type=int, default=2000, help="trials of --sleep-seconds each (0: skip)"
    )
    parser.add_argument("--sleep-seconds", type=float, default=0.05)
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    skipped = [f"--{k} 0" for k in ("tpe", "ray", "sleep") if not getattr(args, k)]
    if args.write and skipped:  # the section holds every part: it would lose these
        parser.error(f"--write measures the whole section: drop {', '.join(skipped)}")
    load = os.getloadavg()
    c.wait_quiet()
    tmp = Path(tempfile.mkdtemp(prefix="sweepspec-scale-"))
    result: dict[str, Any] = {"noop": []}
    try:
        for n in args.trials:
            print(f"no-op x{n}", file=sys.stderr, flush=True)
            row = {"trials": n, "sweepspec": sweepspec_run(tmp, n), "plain": plain_run(tmp, n)}
            result["noop"].append(row)
        biggest = result["noop"][-1]
        spec = biggest["sweepspec"].pop("spec")
        result["reading"] = {"trials": biggest["trials"], **reading(tmp, spec)}
        for row in result["noop"]:
            row["sweepspec"].pop("spec", None)
        if args.tpe:
            print(f"tpe x{args.tpe}", file=sys.stderr, flush=True)
            t = sweepspec_run(tmp, args.tpe, "tpe")
            t.pop("spec")
            result["tpe"] = {
                "trials": args.tpe,
                "sweepspec": t,
                "plain": plain_run(tmp, args.tpe, "tpe"),
                "pure": pure_tpe_ms(tmp, args.tpe),
            }
        if args.sleep:
            print(f"sleep x{args.sleep}", file=sys.stderr, flush=True)
            sl = sweepspec_run(tmp, args.sleep, seconds=args.sleep_seconds)
            sl.pop("spec")
            result["sleep"] = {"trials": args.sleep, "seconds": args.sleep_seconds, **sl}
        if args.ray:
            print(f"ray x{args.ray}", file=sys.stderr, flush=True)
            result["ray"] = {
                "trials": args.ray,
                "seconds": args.ray_seconds,
                **ray_run(tmp, args.ray, args.ray_seconds),
            }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps(result, indent=1), file=sys.stderr)
    body = render(result, c.machine(load))
    c.publish(TITLE, body, args.write)
    return 0


if __name__ == "__main__":
    started = time.monotonic()
    code = main()
    print(f"({time.monotonic() - started:.0f} s)", file=sys.stderr)
    raise SystemExit(code)
