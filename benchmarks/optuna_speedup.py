"""Parallel speed-up of the Optuna backend on a CPU-bound objective.

16 trials of ``sweepspec_examples.toy:busy`` (pure-Python CPU work, about 1.5 s a trial on
one core at ``work: 1.5``; ``--work auto`` calibrates it) with TPE (seed 0), measured as
whole processes (interpreter start-up and imports included, a fresh run directory each time):

* ``sweepspec run`` with ``workers: auto`` (one trial per core);
* the plain sequential Optuna study (:data:`PLAIN`: in-memory storage, ``optimize(n_trials=16)``);
* a hand-written 2-process Optuna study on a journal file (:data:`TWO_PROC`), for reference;
* the hardware ceiling: 2 bare processes doing the same work as 1 (no Optuna at all).

Speed-up = plain sequential / sweepspec, the median over repetitions of each sweepspec run
against the plain run right after it (this machine's speed drifts over minutes); parallel
efficiency = speed-up / workers.
Goal (from the issue): speed-up >= 1.85 on 2 cores (efficiency >= 0.92).

    .venv/bin/python benchmarks/optuna_speedup.py [--reps 3] [--write]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

TITLE = "Optuna backend: parallel speed-up"
TRIALS = 16
TRIAL_S = 1.5
GOAL = 1.85

PLAIN = """\
import sys
import optuna
from sweepspec_examples.toy import busy

WORK = float(sys.argv[1])
optuna.logging.set_verbosity(optuna.logging.WARNING)


def objective(trial):
    return busy({"x": trial.suggest_float("x", 0.0, 1.0), "work": WORK}, None)["loss"]


study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=0))
study.optimize(objective, n_trials=16)
print(study.best_value)
print(sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials))
"""

TWO_PROC = """\
import multiprocessing, sys
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock
from sweepspec_examples.toy import busy

WORK, PATH = float(sys.argv[1]), sys.argv[2]


def storage():
    return JournalStorage(JournalFileBackend(PATH, lock_obj=JournalFileOpenLock(PATH)))


def objective(trial):
    return busy({"x": trial.suggest_float("x", 0.0, 1.0), "work": WORK}, None)["loss"]


def worker(seed):
    sampler = optuna.samplers.TPESampler(seed=seed)
    optuna.load_study(study_name="s", storage=storage(), sampler=sampler).optimize(
        objective, n_trials=8)


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=storage())
    procs = [multiprocessing.get_context("fork").Process(target=worker, args=(i,))
             for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    print(study.best_value)
"""

SPIN = """\
import sys, time
from multiprocessing import get_context
from sweepspec_examples.toy import busy

WORK, N = float(sys.argv[1]), int(sys.argv[2])
def one(_=None):
    busy({"x": 0.5, "work": WORK}, None)
t0 = time.perf_counter()
procs = [get_context("fork").Process(target=one) for _ in range(N)]
for p in procs:
    p.start()
for p in procs:
    p.join()
print(time.perf_counter() - t0)
"""

SPEC = """\
sweepspec: 1
name: speedup
storage: {storage}
objective:
  function: sweepspec_examples.toy:busy
  metric: loss
  mode: min
  config: {{work: {work}}}
space:
  x: {{uniform: [0.0, 1.0]}}
searcher: {{type: tpe, seed: 0}}
trials: {{num_samples: {trials}}}
"""


def one_trial_s(work: float, reps: int = 3) -> float:
    """Median seconds of one busy() call at ``work``, alone, in a fresh process."""
    code = (
        "import time; from sweepspec_examples.toy import busy; t=time.perf_counter(); "
        f"busy({{'x': 0.5, 'work': {work}}}, None); print(time.perf_counter()-t)"
    )
    times = []
    for _ in range(reps):
        r = c.undisturbed(lambda: c.run_timed([c.PY, "-c", code], c.ROOT))
        times.append(float(r.stdout.strip()))
    return c.median(times)


def calibrate() -> float:
    """The ``work`` for which one trial takes TRIAL_S seconds on one idle core: the fastest
    of 3 runs of ``work: 1`` in one process (the least disturbed), scaled."""
    code = (
        "import time; from sweepspec_examples.toy import busy\n"
        "def once():\n"
        "    t = time.perf_counter(); busy({'x': 0.5, 'work': 1.0}, None)\n"
        "    return time.perf_counter() - t\n"
        "print(min(once() for _ in range(3)))"
    )
    r = c.undisturbed(lambda: c.run_timed([c.PY, "-c", code], c.ROOT))
    return round(TRIAL_S / float(r.stdout.strip()), 3)


def _mean_duration(trials_csv: Path) -> float:
    """The mean trial duration (``duration_s``, as the driver measured it) of a run."""
    with open(trials_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))
    return sum(float(r["duration_s"]) for r in rows) / len(rows)


def measure(work: float, reps: int, tmp: Path) -> dict[str, list[c.Timed]]:
    plain = c.write_spec(tmp / "plain.py", PLAIN)
    two = c.write_spec(tmp / "two_proc.py", TWO_PROC)
    spin = c.write_spec(tmp / "spin.py", SPIN)
    spec = c.write_spec(
        tmp / "speedup.yaml", SPEC.format(storage=tmp / "runs", work=work, trials=TRIALS)
    )

    def sweepspec_run() -> c.Timed:
        shutil.rmtree(tmp / "runs", ignore_errors=True)
        r = c.run_timed([*c.SWEEPSPEC, "run", str(spec)], tmp)
        summary = json.loads((tmp / "runs" / "speedup" / "summary.json").read_text())
        r.extra["concurrency"] = summary.get("concurrency")
        r.extra["trials"] = summary.get("trials")
        r.extra["trial_s"] = _mean_duration(tmp / "runs" / "speedup" / "trials.csv")
        return r

    def plain_run() -> c.Timed:
        r = c.run_timed([c.PY, str(plain), str(work)], tmp)
        r.extra["trial_s"] = float(r.stdout.split()[-1]) / TRIALS
        return r

    def two_proc() -> c.Timed:
        journal = tmp / "two.journal"
        for p in tmp.glob("two.journal*"):
            p.unlink()
        return c.run_timed([c.PY, str(two), str(work), str(journal)], tmp)

    runs: dict[str, list[c.Timed]] = {
        k: [] for k in ("plain", "sweepspec", "two_proc", "spin1", "spin2")
    }
    c.undisturbed(sweepspec_run)  # warm-up: .pyc files, disk cache
    for i in range(reps):  # interleaved, so that drift hits every variant alike
        print(f"rep {i + 1}/{reps}", file=sys.stderr, flush=True)
        runs["sweepspec"].append(c.undisturbed(sweepspec_run))
        runs["plain"].append(c.undisturbed(plain_run))
        runs["two_proc"].append(c.undisturbed(two_proc))
        for n in (1, 2):
            r = c.undisturbed(lambda n=n: c.run_timed([c.PY, str(spin), str(work), str(n)], tmp))
            r.extra["inner"] = float(r.stdout.strip())
            runs[f"spin{n}"].append(r)
    return runs


def render(
    runs: dict[str, list[c.Timed]], work: float, trial_s: float, reps: int, machine: str
) -> tuple[str, float]:
    med = {k: c.median([r.wall for r in v]) for k, v in runs.items()}
    workers = runs["sweepspec"][0].extra.get("concurrency") or c.nproc()
    # the machine's speed drifts over minutes: pair each sweepspec run with the plain run
    # right after it, and take the median of the per-pair speed-ups
    pairs = [p.wall / s.wall for p, s in zip(runs["plain"], runs["sweepspec"], strict=True)]
    speedup = c.median(pairs)
    ceiling = (
        c.median([r.extra["inner"] for r in runs["spin1"]])
        * 2
        / c.median([r.extra["inner"] for r in runs["spin2"]])
    )
    ideal = TRIALS * trial_s / workers
    plain_trial = c.median([r.extra["trial_s"] for r in runs["plain"]])
    ours_trial = c.median([r.extra["trial_s"] for r in runs["sweepspec"]])
    others = max(r.others for v in runs.values() for r in v)
    verdict = "meets" if speedup >= GOAL else "misses"

    def row(label: str, key: str, note: str) -> list[str]:
        walls = [r.wall for r in runs[key]]
        ratio = c.median([p.wall / x.wall for p, x in zip(runs["plain"], runs[key], strict=True)])
        return [
            label,
            f"{med[key]:.2f} s",
            f"{ratio:.2f}x",
            f"{ratio / workers:.2f}",
            f"{c.spread(walls)}; {note}",
        ]

    rows = [
        row(
            "plain sequential Optuna study (in-memory, TPE seed 0)",
            "plain",
            f"the baseline; a trial took {plain_trial:.3f} s",
        ),
        row(
            f"`sweepspec run` ({workers} workers, journal, TPE seed 0)",
            "sweepspec",
            f"ideal {ideal:.2f} s + start-up; a trial took {ours_trial:.3f} s",
        ),
        row(
            "hand-written 2-process Optuna study (journal, `JournalFileOpenLock`)",
            "two_proc",
            "reference",
        ),
    ]
    body = "\n".join(
        [
            f"Goal: {TRIALS} trials of a {TRIAL_S:g} s CPU-bound objective at least {GOAL}x faster "
            "with `sweepspec run` than with the plain sequential Optuna study (parallel "
            "efficiency "
            f">= {GOAL / 2:.3f} on 2 cores). Result: **{speedup:.2f}x** ({verdict} the goal).",
            "",
            c.speedup_table(
                reps,
                [
                    [f"**{x}**" if i == 1 and j < 3 else x for j, x in enumerate(r)]
                    for i, r in enumerate(rows)
                ],
            ),
            "",
            f"* Objective: `sweepspec_examples.toy:busy` with `work: {work}`: one "
            "trial "
            f"takes **{trial_s:.3f} s** alone on an idle core (median of 3, fresh process).",
            f"* Hardware ceiling: 2 bare processes doing the same work at once run "
            f"**{ceiling:.2f}x** as fast as one (no Optuna, no start-up).",
            "* This VM's two vCPUs run the same work at different, drifting speeds (one "
            "`work: 1.5` trial took 0.85 s to 1.5 s when measured minutes apart, often slower on "
            "one vCPU than the other), so single runs vary by 10-15%: the speed-ups are medians "
            "of paired runs (each `sweepspec run` against the plain run right after it).",
            "* The wall time includes start-up: interpreter, imports, study creation (and for "
            "sweepspec reading the spec, the run directory, the journal and writing results).",
            f"* Runs disturbed by other processes were repeated; the most any reported run shared "
            f"the machine with was {others:.2f} cores of other processes' work on average.",
            "",
            *c.baseline_footer(PLAIN, machine),
        ]
    )
    return body, speedup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--work", default="1.5", help="busy() work units (about 1 s each), or auto (1.5 s)"
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    load = os.getloadavg()
    c.wait_quiet()
    work = calibrate() if args.work == "auto" else float(args.work)
    trial_s = one_trial_s(work)
    tmp = Path(tempfile.mkdtemp(prefix="sweepspec-speedup-"))
    try:
        runs = measure(work, args.reps, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    body, _ = render(runs, work, trial_s, args.reps, c.machine(load))
    c.publish(TITLE, body, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
