"""Parallel speed-up of the Optuna backend on a small torch objective.

24 trials of ``sweepspec_examples.mlp:train`` (an MLP on two spirals, ``torch.set_num_threads(1)``,
``epochs: 20``, about 1 s a trial here; ``--epochs auto`` calibrates), TPE (seed 0) over
``lr``, measured as whole processes (interpreter start-up and imports included, fresh run
directory each time):

* ``sweepspec run`` with ``workers: auto`` (one trial per core): the driver imports the
  objective's module (and torch) once, and forks its trial processes from it; each trial
  process runs trial after trial (``backend.reuse_processes``);
* the plain sequential Optuna study (:data:`PLAIN`, in-memory storage);
* for reference, 2 independent worker processes on a journal (:data:`WORKER`), each a fresh
  ``python`` that imports torch itself (what running two scripts by hand gives).

Speed-up: the median over repetitions of each sweepspec run against the plain run right after
it (this machine's speed drifts over minutes). Goal (from the issue): speed-up >= 1.8 on 2 cores.

    .venv/bin/python benchmarks/torch_speedup.py [--reps 3] [--write]
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

TITLE = "torch objective"
TRIALS = 24
TRIAL_S = 1.0
GOAL = 1.8

PLAIN = """\
import sys
import optuna
from sweepspec_examples.mlp import train

EPOCHS = int(sys.argv[1])
optuna.logging.set_verbosity(optuna.logging.WARNING)


class Trial:  # what train() expects: reports go nowhere, no checkpoint to resume
    checkpoint = None
    def report(self, metrics, checkpoint=None): pass


def objective(trial):
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    return train({"lr": lr, "epochs": EPOCHS}, Trial())["val_accuracy"]


study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
study.optimize(objective, n_trials=24)
print(study.best_value)
print(sum((t.datetime_complete - t.datetime_start).total_seconds() for t in study.trials))
"""

WORKER = """\
import subprocess, sys
import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

EPOCHS, PATH, ROLE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
optuna.logging.set_verbosity(optuna.logging.WARNING)
storage = JournalStorage(JournalFileBackend(PATH, lock_obj=JournalFileOpenLock(PATH)))


class Trial:
    checkpoint = None
    def report(self, metrics, checkpoint=None): pass


if ROLE == "parent":
    optuna.create_study(study_name="s", storage=storage, direction="maximize")
    procs = [subprocess.Popen([sys.executable, __file__, str(EPOCHS), PATH, str(i)])
             for i in range(2)]
    sys.exit(max(p.wait() for p in procs))
from sweepspec_examples.mlp import train


def objective(trial):
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    return train({"lr": lr, "epochs": EPOCHS}, Trial())["val_accuracy"]


study = optuna.load_study(study_name="s", storage=storage,
                          sampler=optuna.samplers.TPESampler(seed=int(ROLE)))
study.optimize(objective, n_trials=12)
"""

SPEC = """\
sweepspec: 1
name: torch-speedup
storage: {storage}
objective:
  function: sweepspec_examples.mlp:train
  metric: val_accuracy
  mode: max
  config: {{epochs: {epochs}, hidden: 64, layers: 2}}
space:
  lr: {{loguniform: [1.0e-3, 1.0e-1]}}
searcher: {{type: tpe, seed: 0}}
trials: {{num_samples: {trials}}}
"""

TIMING = """\
import sys, time
from sweepspec_examples.mlp import train

class Trial:
    checkpoint = None
    def report(self, metrics, checkpoint=None): pass

train({"lr": 0.01, "epochs": 1}, Trial())  # first use: torch._dynamo and friends
epochs = int(sys.argv[1])
times = []
for _ in range(3):
    t = time.perf_counter()
    train({"lr": 0.01, "epochs": epochs}, Trial())
    times.append(time.perf_counter() - t)
print(sorted(times)[1])
"""


def trial_seconds(tmp: Path, epochs: int) -> float:
    script = c.write_spec(tmp / "timing.py", TIMING)
    r = c.undisturbed(lambda: c.run_timed([c.PY, str(script), str(epochs)], tmp))
    return float(r.stdout.strip())


def calibrate(tmp: Path) -> tuple[int, float]:
    """Epochs for which one trial takes about TRIAL_S (and that trial's seconds). A trial is
    a fixed cost (data, model) plus a cost per epoch: fitted on two lengths, then checked."""
    short, long_ = 4, 16
    t_short, t_long = trial_seconds(tmp, short), trial_seconds(tmp, long_)
    per_epoch = max((t_long - t_short) / (long_ - short), 1e-4)
    fixed = max(t_short - short * per_epoch, 0.0)
    epochs = max(1, round((TRIAL_S - fixed) / per_epoch))
    seconds = trial_seconds(tmp, epochs)
    epochs = max(1, round(epochs * TRIAL_S / seconds))  # one correction for the drift
    return epochs, trial_seconds(tmp, epochs)


def measure(epochs: int, reps: int, tmp: Path) -> dict[str, list[c.Timed]]:
    plain = c.write_spec(tmp / "plain.py", PLAIN)
    worker = c.write_spec(tmp / "worker.py", WORKER)
    spec = c.write_spec(
        tmp / "torch.yaml", SPEC.format(storage=tmp / "runs", epochs=epochs, trials=TRIALS)
    )

    def sweepspec_run() -> c.Timed:
        shutil.rmtree(tmp / "runs", ignore_errors=True)
        r = c.run_timed([*c.SWEEPSPEC, "run", str(spec)], tmp)
        summary = json.loads((tmp / "runs" / "torch-speedup" / "summary.json").read_text())
        r.extra["concurrency"] = summary.get("concurrency")
        with open(tmp / "runs" / "torch-speedup" / "trials.csv", newline="") as fh:
            rows = list(csv.DictReader(fh))
        r.extra["trial_s"] = sorted(float(row["duration_s"]) for row in rows)
        return r

    def plain_run() -> c.Timed:
        r = c.run_timed([c.PY, str(plain), str(epochs)], tmp)
        r.extra["trial_s"] = float(r.stdout.split()[-1]) / TRIALS
        return r

    def workers() -> c.Timed:
        for p in tmp.glob("w.journal*"):
            p.unlink()
        return c.run_timed([c.PY, str(worker), str(epochs), str(tmp / "w.journal"), "parent"], tmp)

    runs: dict[str, list[c.Timed]] = {"plain": [], "sweepspec": [], "workers": []}
    c.undisturbed(sweepspec_run)  # warm-up: .pyc files, disk cache
    for i in range(reps):
        print(f"rep {i + 1}/{reps}", file=sys.stderr, flush=True)
        runs["sweepspec"].append(c.undisturbed(sweepspec_run))
        runs["plain"].append(c.undisturbed(plain_run))
        runs["workers"].append(c.undisturbed(workers))
    return runs


def render(
    runs: dict[str, list[c.Timed]],
    epochs: int,
    trial_s: float,
    imports: dict[str, float],
    reps: int,
    machine: str,
) -> tuple[str, float]:
    med = {k: c.median([r.wall for r in v]) for k, v in runs.items()}
    n = runs["sweepspec"][0].extra.get("concurrency") or c.nproc()
    # the machine's speed drifts over minutes: pair each sweepspec run with the plain run
    # right after it, and take the median of the per-pair speed-ups
    speedup = c.median(
        [p.wall / x.wall for p, x in zip(runs["plain"], runs["sweepspec"], strict=True)]
    )
    others = max(r.others for v in runs.values() for r in v)
    import_s = imports["torch"]
    dynamo_s = max(imports["dynamo"] - imports["torch"], 0.0)
    fixed = imports["dynamo"] + imports["optuna"]
    ceiling = (fixed + TRIALS * trial_s) / (fixed + TRIALS * trial_s / n)
    plain_trial = c.median([r.extra["trial_s"] for r in runs["plain"]])
    ours_trial = c.median([c.median(r.extra["trial_s"]) for r in runs["sweepspec"]])

    def row(label: str, key: str, note: str) -> list[str]:
        ratio = c.median([p.wall / x.wall for p, x in zip(runs["plain"], runs[key], strict=True)])
        return [
            label,
            f"{med[key]:.2f} s",
            f"{ratio:.2f}x",
            f"{ratio / n:.2f}",
            f"{c.spread([r.wall for r in runs[key]])}; {note}",
        ]

    rows = [
        row(
            "plain sequential Optuna study (in-memory, TPE seed 0)",
            "plain",
            f"the baseline; a trial took {plain_trial:.3f} s (the first includes "
            "importing `torch._dynamo`)",
        ),
        row(
            f"**`sweepspec run`** ({n} workers, trial processes forked from the driver, reused)",
            "sweepspec",
            f"ideal {TRIALS * trial_s / n:.2f} s + start-up; a trial took {ours_trial:.3f} s "
            "(median)",
        ),
        row("2 independent worker processes, each imports torch (journal)", "workers", "reference"),
    ]
    verdict = "meets" if speedup >= GOAL else "misses"
    body = "\n".join(
        [
            f"Goal: {TRIALS} trials of a ~{TRIAL_S:g} s torch objective at least {GOAL}x faster "
            "with "
            f"`sweepspec run` than with the plain sequential Optuna study, on 2 cores. Result: "
            f"**{speedup:.2f}x** ({verdict} the goal).",
            "",
            c.speedup_table(
                reps,
                rows,
            ),
            "",
            f"* Objective: `sweepspec_examples.mlp:train` (hidden 64, 2 layers, Adam, "
            f"`torch.set_num_threads(1)`) with `epochs: {epochs}`: one trial takes "
            f"**{trial_s:.3f} s** once torch is warm (median of 3).",
            f'* `python -c "import torch, sweepspec_examples.mlp"` takes {import_s:.2f} s, and '
            f"`torch._dynamo` (imported by the first `torch.optim.Adam(...)`) {dynamo_s:.2f} s "
            "more: every variant pays both once per process that trains (the independent workers "
            "twice, in parallel).",
            f"* Even with no engine overhead at all, 2 workers cannot beat "
            f"(F + {TRIALS}T) / (F + {TRIALS // 2}T) = **{ceiling:.2f}x** here, with "
            f"T = {trial_s:.3f} s a trial and F = {fixed:.2f} s of imports that no variant can "
            "spread over the cores (interpreter, optuna, torch, `torch._dynamo`).",
            "* sweepspec saves each epoch's checkpoint (a pickle of the model and optimizer "
            "state, about 3 ms an epoch here; at most one save per 20 times its cost) in the "
            "trial directory, and runs trials in processes forked from the driver (isolation: "
            "timeouts, crashes, memory), each reused for the next trial. The plain study and the "
            "independent workers keep nothing and train in one warm process each.",
            "* On 2 vCPUs two trainings at once run slower than one alone (shared caches, memory "
            "bandwidth, the driver's own work): compare the trial times in the table.",
            "* This VM's speed drifts strongly: two `python` processes training the same model "
            "side by side took 0.93-2.1 s a training minutes apart (2026-11-27); the medians of "
            "interleaved runs above carry that noise (see the min-max of each row).",
            f"* Runs disturbed by other processes were repeated; the most any reported run shared "
            f"the machine with was {others:.2f} cores of other work.",
            "",
            *c.baseline_footer(PLAIN, machine),
        ]
    )
    return body, speedup


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--epochs", default="20", help="mlp epochs a trial (20: about 1 s here), or auto (~1 s)"
    )
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    load = os.getloadavg()
    c.wait_quiet()
    tmp = Path(tempfile.mkdtemp(prefix="sweepspec-torch-"))
    try:
        if args.epochs == "auto":
            epochs, trial_s = calibrate(tmp)
        else:
            epochs = int(args.epochs)
            trial_s = trial_seconds(tmp, epochs)
        imports = {"torch": [], "dynamo": [], "optuna": []}
        code = {
            "torch": "import torch, sweepspec_examples.mlp",
            "dynamo": "import torch, sweepspec_examples.mlp, torch._dynamo",
            "optuna": "import optuna",
        }
        for _ in range(3):
            for key, text in code.items():
                timed = c.undisturbed(lambda t=text: c.run_timed([c.PY, "-c", t], tmp))
                imports[key].append(timed.wall)
        runs = measure(epochs, args.reps, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    imp = {k: c.median(v) for k, v in imports.items()}
    body, _ = render(runs, epochs, trial_s, imp, args.reps, c.machine(load))
    c.publish(TITLE, body, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
