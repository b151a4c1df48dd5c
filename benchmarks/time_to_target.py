"""Time to target: ``sweepspec run`` against the plain Optuna study, at equal wall time.

How much sooner ``sweepspec run`` reaches a good value than the plain sequential Optuna study,
on two real objectives.

Objectives (their spaces as in ``sweeps/classifier.yaml`` and ``sweeps/dqn.yaml``, without
their constraints and ``try_first``, which the plain study has no way to say):

* ``classifier``: ``sweepspec_examples.classifier:train`` (a torch MLP on scikit-learn's
  digits), metric ``accuracy`` (max), one report an epoch;
* ``dqn``: ``sweepspec_examples.dqn:train`` (stable-baselines3's DQN on CartPole), metric
  ``episode_reward_mean`` (max), one report every ``report_every`` environment steps.

Variants, each a whole process from the spawn (a fresh run directory each time), per seed s
(TPE's seed and the objective's ``seed``):

* (a) the plain sequential Optuna study (:data:`PLAIN`): ``optimize(n_trials=N)``; its wall
  time T_a is the budget of the others (same seed);
* (b) ``sweepspec run``, Optuna backend, 2 trials at a time, FIFO, TPE seed s;
* (c) the same with ASHA: ``max_t`` = the reports of a trial, the example sweep's reduction
  factor (2) and grace period (3 epochs; 4000 env steps), at most half of ``max_t``;
* (d) ``sweepspec run``, Ray backend, 2 trials at a time, ASHA;
* (e) as (c), with promotion-based ASHA (``scheduler.mode: promote``): a trial outside its
  rung's top pauses there and resumes from its checkpoint when it earns promotion.

(b)-(e) get ``num_samples: 10 N`` and ``stop: {sweep: {time_budget: T_a}}``. Target: 0.995 x
(for a max metric) the median over seeds of (a)'s best value; time to target: spawn to the end
of the first COMPLETE trial that reaches it. Goal (from the issue): >= 4x sooner to the target
than (a), at equal or better final quality.

    .venv/bin/python benchmarks/time_to_target.py [--seeds 3] [--objectives classifier,dqn]
        [--classifier-trials 24] [--classifier-epochs 20] [--dqn-trials 6] [--dqn-steps 8000]
        [--dqn-report-every 1000] [--variants fifo,asha,ray] [--quick] [--keep] [--plot PATH]
        [--write]

The defaults take about half an hour on 2 idle cores (the classifier about 9 minutes, the
DQN about 20: (a) takes about 75 s a seed there, and each sweepspec run that long plus what is
in flight at the budget); ``--quick`` about 2 minutes.

``--write`` replaces the "## Time to target" section of docs/benchmarks.md and writes the plot
to docs/time_to_target.png (else the plot goes to the temp directory; ``--plot PATH``).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as c

TITLE = "Time to target"
GOAL = 4.0
WORKERS = 2
SAMPLES_FACTOR = 10  # num_samples of (b)-(e): this many times (a)'s trials (the budget stops)
TARGET_FRACTION = 0.005  # the target is this fraction of |median best of (a)| short of it
PNG = c.ROOT / "docs" / "time_to_target.png"
#: Before the first run, wait at most this long for a quiet machine; before each other run,
#: at most RUN_WAIT_S (a machine that is never quiet must not cost minutes a run).
QUIET_WAIT_S = 300.0
RUN_WAIT_S = 60.0
ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "PYTHONPATH": os.pathsep.join([str(c.ROOT), os.environ.get("PYTHONPATH", "")]),
}
VERSIONS = ("sweepspec", "optuna", "ray", "torch", "stable-baselines3", "gymnasium", "scikit-learn")

ConfigValue = int | float | str

VARIANTS: dict[str, str] = {
    "plain": "(a) plain sequential Optuna study",
    "fifo": "(b) `sweepspec run`, Optuna backend, 2 workers, FIFO",
    "asha": "(c) `sweepspec run`, Optuna backend, 2 workers, ASHA",
    "ray": "(d) `sweepspec run`, Ray backend, 2 at a time, ASHA",
    "promote": "(e) `sweepspec run`, Optuna backend, 2 workers, promotion-based ASHA",
}
SHORT = {
    "plain": "(a) plain",
    "fifo": "(b) FIFO",
    "asha": "(c) ASHA",
    "ray": "(d) Ray ASHA",
    "promote": "(e) promotion ASHA",
}
COLORS = {
    "plain": "tab:gray",
    "fifo": "tab:blue",
    "asha": "tab:green",
    "ray": "tab:orange",
    "promote": "tab:purple",
}

# -- the plain sequential study (a) -------------------------------------------------------

#: The plain study as a user writes it today; ``@MODULE@``, ``@METRIC@``, ``@DIRECTION@`` and
#: ``@SUGGEST@`` are filled in per objective. The last line (the trials' times, values and
#: report counts, for this benchmark) is no part of the 14 lines a user writes.
PLAIN = """\
import json, sys
import optuna
from @MODULE@ import train

N, SEED, CONFIG = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
optuna.logging.set_verbosity(optuna.logging.WARNING)


class Trial:  # what train() calls: report() each step (counted); nothing to resume from
    checkpoint = None
    reports = 0

    def report(self, metrics, checkpoint=None):
        self.reports += 1


def objective(trial):
    config = dict(CONFIG)
@SUGGEST@
    t = Trial()
    value = train(config, t)["@METRIC@"]
    trial.set_user_attr("reports", t.reports)
    return value


sampler = optuna.samplers.TPESampler(seed=SEED)
study = optuna.create_study(direction="@DIRECTION@", sampler=sampler)
study.optimize(objective, n_trials=N)
print(json.dumps([[t.datetime_start.timestamp(), t.datetime_complete.timestamp(), t.value,
                   t.user_attrs.get("reports", 0)] for t in study.trials]))
"""

CLASSIFIER_SUGGEST = """\
    config["learning_rate"] = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    config["width"] = trial.suggest_int("width", 16, 512, log=True)
    config["depth"] = trial.suggest_int("depth", 1, 4)
    config["dropout"] = trial.suggest_float("dropout", 0.0, 0.5, step=0.05)
    config["weight_decay"] = trial.suggest_float("weight_decay", 1e-6, 1e-2, log=True)
    config["batch_size"] = trial.suggest_categorical("batch_size", [16, 32, 64, 128])
    config["optimizer"] = trial.suggest_categorical("optimizer", ["adam", "sgd"])
    if config["optimizer"] == "sgd":
        config["momentum"] = trial.suggest_float("momentum", 0.0, 0.99)"""

CLASSIFIER_SPACE = """\
  learning_rate: {loguniform: [1.0e-4, 1.0e-1]}
  width: {int: [16, 512], log: true}
  depth: {int: [1, 4]}
  dropout: {uniform: [0.0, 0.5], step: 0.05}
  weight_decay: {loguniform: [1.0e-6, 1.0e-2]}
  batch_size: {choice: [16, 32, 64, 128]}
  optimizer: {choice: [adam, sgd]}
  momentum: {uniform: [0.0, 0.99], when: "optimizer == 'sgd'"}"""

DQN_SUGGEST = """\
    config["learning_rate"] = trial.suggest_float("learning_rate", 1e-4, 1e-2, log=True)
    config["batch_size"] = trial.suggest_categorical("batch_size", [32, 64, 128])
    config["buffer_size"] = trial.suggest_categorical("buffer_size", [10000, 50000])
    arch = trial.suggest_categorical("policy_kwargs.net_arch", ["64,64", "128,128", "256,256"])
    config["policy_kwargs"] = {"net_arch": [int(w) for w in arch.split(",")]}
    config["gamma"] = trial.suggest_float("gamma", 0.95, 0.999)
    config["target_update_interval"] = trial.suggest_categorical(
        "target_update_interval", [10, 100, 500, 1000])
    config["exploration_fraction"] = trial.suggest_float("exploration_fraction", 0.05, 0.4)
    config["exploration_final_eps"] = trial.suggest_float("exploration_final_eps", 0.01, 0.1)
    config["train_freq"] = trial.suggest_categorical("train_freq", [1, 4, 8])
    config["learning_starts"] = trial.suggest_int("learning_starts", 500, 2000, step=500)"""

DQN_SPACE = """\
  learning_rate: {loguniform: [1.0e-4, 1.0e-2]}
  batch_size: {choice: [32, 64, 128]}
  buffer_size: {choice: [10000, 50000]}
  policy_kwargs:
    net_arch: {choice: [[64, 64], [128, 128], [256, 256]]}
  gamma: {uniform: [0.95, 0.999]}
  target_update_interval: {choice: [10, 100, 500, 1000]}
  exploration_fraction: {uniform: [0.05, 0.4]}
  exploration_final_eps: {uniform: [0.01, 0.1]}
  train_freq: {choice: [1, 4, 8]}
  learning_starts: {int: [500, 2000], step: 500}"""

SPEC = """\
sweepspec: 1
name: {name}
storage: {storage}
objective:
  function: {function}
  metric: {metric}
  mode: {mode}
  config: {config}
space:
{space}
searcher: {{type: tpe, seed: {seed}}}
scheduler: {scheduler}
trials: {{num_samples: {samples}}}
stop: {{sweep: {{time_budget: {budget:.1f}}}}}
resources: {{max_concurrent: {workers}, per_trial: {{cpu: 1}}}}
backend: {{type: {backend}}}
"""


@dataclass(frozen=True)
class Objective:
    """One objective of the benchmark at one size."""

    key: str
    module: str
    metric: str
    mode: str  # "max" | "min"
    unit: str  # what the work is counted in ("epochs", "env steps")
    space: str  # the spec's space section (YAML, indented)
    suggest: str  # the plain study's suggest_* lines (Python, indented)
    fixed: tuple[tuple[str, ConfigValue], ...]  # objective.config besides size and seed
    size_key: str  # "epochs" | "total_timesteps"
    size: int
    report_every: int  # units a report stands for (1 epoch; report_every env steps)
    trials: int
    #: the example sweep's ASHA: (grace period in units of work, reduction factor)
    example: tuple[int, int]

    @property
    def function(self) -> str:
        return f"{self.module}:train"

    @property
    def max_t(self) -> int:
        return max(1, self.size // self.report_every)

    @property
    def grace(self) -> int:
        """The example's grace period (in reports; the same epochs or env steps), at most
        half of ``max_t`` (at least 1)."""
        return max(1, min(self.example[0] // self.report_every, self.max_t // 2))

    @property
    def reduction(self) -> int:
        return self.example[1]

    def config(self, seed: int) -> dict[str, ConfigValue]:
        return {**dict(self.fixed), self.size_key: self.size, "seed": seed}

    def better(self, a: float, b: float) -> bool:
        """Whether ``a`` is at least as good as ``b``."""
        return a >= b if self.mode == "max" else a <= b

    @property
    def worst(self) -> float:
        return -math.inf if self.mode == "max" else math.inf

    def plain_script(self) -> str:
        direction = "maximize" if self.mode == "max" else "minimize"
        return (
            PLAIN.replace("@MODULE@", self.module)
            .replace("@METRIC@", self.metric)
            .replace("@DIRECTION@", direction)
            .replace("@SUGGEST@", self.suggest)
        )

    def size_text(self) -> str:
        if self.size_key == "epochs":
            return f"{self.trials} trials x {self.size} epochs"
        return f"{self.trials} trials x {self.size} env steps (a report every {self.report_every})"


def objectives(args: argparse.Namespace) -> dict[str, Objective]:
    return {
        "classifier": Objective(
            key="classifier",
            module="sweepspec_examples.classifier",
            metric="accuracy",
            mode="max",
            unit="epochs",
            space=CLASSIFIER_SPACE,
            suggest=CLASSIFIER_SUGGEST,
            fixed=(),
            size_key="epochs",
            size=args.classifier_epochs,
            report_every=1,
            trials=args.classifier_trials,
            example=(3, 2),  # sweeps/classifier.yaml: grace_period 3 epochs
        ),
        "dqn": Objective(
            key="dqn",
            module="sweepspec_examples.dqn",
            metric="episode_reward_mean",
            mode="max",
            unit="env steps",
            space=DQN_SPACE,
            suggest=DQN_SUGGEST,
            fixed=(
                ("env_id", "CartPole-v1"),
                ("report_every", args.dqn_report_every),
                ("gradient_steps", 1),
                ("stats_window_size", 20),
            ),
            size_key="total_timesteps",
            size=args.dqn_steps,
            report_every=args.dqn_report_every,
            trials=args.dqn_trials,
            example=(4000, 2),  # sweeps/dqn.yaml: grace_period 4 reports of 1000 steps
        ),
    }


# -- one run ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    """One finished trial of a run; times in seconds from the spawn of the run's process."""

    start: float
    end: float
    state: str  # COMPLETE, PRUNED, FAILED
    value: float | None  # the metric of a COMPLETE trial (a pruned one's is partial: None)
    reports: int
    #: a run of a trial that paused at a rung and was promoted later (promotion-based ASHA):
    #: it counts for the time the cores were busy, not as a trial of its own
    segment: bool = False


@dataclass
class Run:
    objective: str
    variant: str
    seed: int
    wall: float  # spawn to exit
    budget: float  # T_a of this seed (for (a): its own wall)
    trials: list[Finished] = field(default_factory=list)
    others_before: float = 0.0  # cores other processes used just before it
    others_during: float | None = None  # ... during it (None: not measurable, Ray)

    def curve(self, obj: Objective) -> list[tuple[float, float]]:
        """Best so far: (end time, best value) at each COMPLETE trial that improved it."""
        out: list[tuple[float, float]] = []
        for t in sorted(self.trials, key=lambda t: t.end):
            if t.state != "COMPLETE" or t.value is None:
                continue
            if not out or (obj.better(t.value, out[-1][1]) and t.value != out[-1][1]):
                out.append((t.end, t.value))
        return out

    def best_at(self, obj: Objective, moment: float) -> float:
        """The best COMPLETE value that ended by ``moment`` (the worst value when none)."""
        best = obj.worst
        for end, value in self.curve(obj):
            if end <= moment:
                best = value
        return best

    def best(self, obj: Objective) -> float:
        return self.best_at(obj, math.inf)

    def time_to(self, obj: Objective, target: float) -> float:
        """Spawn to the end of the first COMPLETE trial reaching ``target`` (inf: not within
        the budget; a trial that was running at the budget and reached it later does not
        count)."""
        for end, value in self.curve(obj):
            if end <= self.budget and obj.better(value, target):
                return end
        return math.inf

    @property
    def startup(self) -> float:
        return min((t.start for t in self.trials), default=math.inf)

    def first_trial(self) -> float:
        """How long the first trial (the earliest started) took; nan without trials."""
        first = min(self.trials, key=lambda t: t.start, default=None)
        return math.nan if first is None else first.end - first.start

    def trial_median(self) -> float:
        """The median duration of the run's COMPLETE trials; nan without any."""
        done = [t.end - t.start for t in self.trials if t.state == "COMPLETE"]
        return med(done) if done else math.nan

    @property
    def busy(self) -> float:
        """Trial-seconds run within the process's lifetime."""
        return sum(max(0.0, min(t.end, self.wall) - max(t.start, 0.0)) for t in self.trials)

    @property
    def efficiency(self) -> float:
        return self.busy / (WORKERS * self.wall)

    def reports(self) -> int:
        return sum(t.reports for t in self.trials)

    def count(self, state: str) -> int:
        return sum(t.state == state and not t.segment for t in self.trials)

    @property
    def n_trials(self) -> int:
        """Logical trials (a promoted trial's runs are one)."""
        return sum(not t.segment for t in self.trials)

    def idle(self) -> tuple[float, float, float]:
        """Idle core-seconds (of WORKERS cores): before the first trial, from it to the budget,
        and after the budget (the trials in flight at the budget finishing)."""
        first = min(self.startup, self.wall)
        edge = min(max(self.budget, first), self.wall)
        cuts = {0.0, first, edge, self.wall}
        for t in self.trials:
            cuts.update(min(max(x, 0.0), self.wall) for x in (t.start, t.end))
        points = sorted(cuts)
        parts = [0.0, 0.0, 0.0]
        for a, b in itertools.pairwise(points):
            mid = (a + b) / 2
            running = sum(t.start <= mid < t.end for t in self.trials)
            idle = max(0, WORKERS - running) * (b - a)
            parts[0 if mid < first else 1 if mid < edge else 2] += idle
        return parts[0], parts[1], parts[2]


def iso_seconds(text: str) -> float:
    """A trials.csv moment (ISO 8601 UTC, ``...Z``) as a ``time.time()`` reading."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def spawn(
    argv: list[str], cwd: Path, stdout: Path, stderr: Path, timeout: float, measurable: bool
) -> tuple[float, float, float | None]:
    """Run ``argv`` to the end: (time.time() just before the spawn, wall, cores used by other
    processes meanwhile or None when they cannot be told apart from the run's own)."""
    watch = c.CpuWatch().start()
    t0 = time.time()
    with open(stdout, "w") as out, open(stderr, "w") as err:
        proc = subprocess.run(
            argv,
            cwd=cwd,
            env={**os.environ, **ENV},
            stdout=out,
            stderr=err,
            timeout=timeout,
            check=False,
        )
    wall = time.time() - t0
    watch.stop()
    if proc.returncode != 0:
        tail = (stdout.read_text()[-2000:] + stderr.read_text()[-3000:]).strip()
        raise SystemExit(f"{' '.join(argv)} failed ({proc.returncode}):\n{tail}")
    return t0, wall, watch.others if measurable else None


def run_plain(obj: Objective, seed: int, work: Path) -> Run:
    work.mkdir(parents=True, exist_ok=True)
    script = c.write_spec(work / "plain.py", obj.plain_script())
    before = c.wait_quiet(max_wait_s=RUN_WAIT_S)
    argv = [c.PY, str(script), str(obj.trials), str(seed), json.dumps(obj.config(seed))]
    t0, wall, others = spawn(
        argv, work, work / "stdout.txt", work / "log.txt", obj.trials * 600.0 + 300, True
    )
    rows = json.loads((work / "stdout.txt").read_text().strip().splitlines()[-1])
    trials = [
        Finished(start - t0, end - t0, "COMPLETE", float(value), int(reports) * obj.report_every)
        for start, end, value, reports in rows
    ]
    return Run(obj.key, "plain", seed, wall, wall, trials, before, others)


def spec_text(obj: Objective, variant: str, seed: int, budget: float, storage: Path) -> str:
    mode = ", mode: promote" if variant == "promote" else ""
    asha = (
        f"{{type: asha, max_t: {obj.max_t}, grace_period: {obj.grace}, "
        f"reduction_factor: {obj.reduction}{mode}}}"
    )
    return SPEC.format(
        name=f"{obj.key}-{variant}-s{seed}",
        storage=storage,
        function=obj.function,
        metric=obj.metric,
        mode=obj.mode,
        config=json.dumps(obj.config(seed)),
        space=obj.space,
        seed=seed,
        scheduler="{type: fifo}" if variant == "fifo" else asha,
        samples=SAMPLES_FACTOR * obj.trials,
        budget=budget,
        workers=WORKERS,
        backend="ray" if variant == "ray" else "optuna",
    )


def report_lines(path: Path) -> int:
    """The reports a trial made (every line of ``reports/<id>.jsonl``, retries included)."""
    try:
        return sum(1 for line in path.read_text().splitlines() if line.strip())
    except OSError:
        return 0


def read_rundir(obj: Objective, rundir: Path, t0: float) -> list[Finished]:
    """The finished trials of a sweepspec run directory (trials.csv and reports/)."""
    with open(rundir / "trials.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    out = []
    for row in rows:
        if row["state"] not in ("COMPLETE", "PRUNED", "FAILED"):
            continue
        if not row["started_at"] or not row["ended_at"]:
            continue
        text = row.get(obj.metric, "")
        value = float(text) if row["state"] == "COMPLETE" and text else None
        reports = report_lines(rundir / "reports" / f"{row['trial_id']}.jsonl")
        out.append(
            Finished(
                iso_seconds(row["started_at"]) - t0,
                iso_seconds(row["ended_at"]) - t0,
                row["state"],
                value,
                reports * obj.report_every,
            )
        )
    return out


def run_sweepspec(obj: Objective, variant: str, seed: int, budget: float, work: Path) -> Run:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    spec = c.write_spec(work / "spec.yaml", spec_text(obj, variant, seed, budget, work / "runs"))
    before = c.wait_quiet(max_wait_s=RUN_WAIT_S)
    t0, wall, others = spawn(
        [*c.SWEEPSPEC, "run", str(spec)],
        work,
        work / "stdout.txt",
        work / "log.txt",
        budget * 3 + 900,
        variant != "ray",  # Ray's processes are not our children: not told apart
    )
    rundir = work / "runs" / f"{obj.key}-{variant}-s{seed}"
    trials = read_rundir(obj, rundir, t0)
    if variant == "promote":
        trials = split_promoted(obj, trials, rundir, t0)
    return Run(obj.key, variant, seed, wall, budget, trials, before, others)


def split_promoted(
    obj: Objective, trials: list[Finished], rundir: Path, t0: float
) -> list[Finished]:
    """Promotion-based ASHA: a trial's row spans its pauses; its runs (Optuna trials of one
    logical id, from the study's journal) are what kept a core busy. Each run but the last
    becomes a segment; the last keeps the row's state, value and the rest of the reports."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(rundir / "study.journal")))
    name = optuna.get_all_study_names(storage)[0]
    runs: dict[str, list[optuna.trial.FrozenTrial]] = {}
    for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False):
        attrs = t.user_attrs
        if "logical" in attrs and not attrs.get("rejected") and t.datetime_complete:
            runs.setdefault(str(attrs["logical"]), []).append(t)
    with open(rundir / "trials.csv", newline="") as fh:
        ids = [row["trial_id"] for row in csv.DictReader(fh) if row["started_at"]]
    out: list[Finished] = []
    for trial_id, row in zip(ids, trials, strict=True):
        parts = sorted(runs.get(trial_id, []), key=lambda t: t.number)
        if len(parts) <= 1:
            out.append(row)
            continue
        spent = 0
        for t in parts[:-1]:
            assert t.datetime_start is not None and t.datetime_complete is not None
            n = len(t.intermediate_values) * obj.report_every
            spent += n
            out.append(Finished(t.datetime_start.timestamp() - t0,
                                t.datetime_complete.timestamp() - t0,
                                "PRUNED", None, n, segment=True))  # fmt: skip
        last = parts[-1]
        assert last.datetime_start is not None
        out.append(Finished(last.datetime_start.timestamp() - t0, row.end, row.state,
                            row.value, row.reports - spent))  # fmt: skip
    return out


def describe(run: Run, obj: Objective) -> str:
    best = run.best(obj)
    return (
        f"{obj.key} seed {run.seed} {SHORT[run.variant]}: wall {run.wall:.1f} s "
        f"(budget {run.budget:.1f} s), {run.n_trials} trials ({run.count('PRUNED')} pruned, "
        f"{run.count('FAILED')} failed), best {value_text(best)}, best at budget "
        f"{value_text(run.best_at(obj, run.budget))}, start-up {seconds(run.startup)}, "
        f"{run.reports()} {obj.unit}, efficiency {run.efficiency:.2f}"
    )


def measure(
    objs: Sequence[Objective], seeds: Sequence[int], variants: Sequence[str], tmp: Path
) -> dict[str, list[Run]]:
    """Every run, per objective; per seed (a) first (its wall time is the others' budget)."""
    runs: dict[str, list[Run]] = {o.key: [] for o in objs}
    c.wait_quiet(max_wait_s=QUIET_WAIT_S)
    for obj in objs:
        for seed in seeds:
            print(f"{obj.key} seed {seed}: {VARIANTS['plain']} ...", file=sys.stderr, flush=True)
            plain = run_plain(obj, seed, tmp / f"{obj.key}-plain-s{seed}")
            print("  " + describe(plain, obj), file=sys.stderr, flush=True)
            runs[obj.key].append(plain)
            for variant in variants:
                print(
                    f"{obj.key} seed {seed}: {VARIANTS[variant]}, budget {plain.wall:.1f} s ...",
                    file=sys.stderr,
                    flush=True,
                )
                work = tmp / f"{obj.key}-{variant}-s{seed}"
                run = run_sweepspec(obj, variant, seed, plain.wall, work)
                print("  " + describe(run, obj), file=sys.stderr, flush=True)
                runs[obj.key].append(run)
    return runs


# -- figures ------------------------------------------------------------------------------


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def finite_median(values: Sequence[float]) -> float:
    """The median of the values that are numbers (nan: none is)."""
    real = [v for v in values if not math.isnan(v)]
    return med(real) if real else math.nan


def seconds(value: float, digits: int = 1) -> str:
    return "none" if math.isinf(value) or math.isnan(value) else f"{value:.{digits}f} s"


@dataclass(frozen=True)
class Row:
    """One variant's figures on one objective, medians over seeds."""

    variant: str
    time_to_target: float  # inf: not reached in the median
    reached: int
    seeds: int
    speedup: float | None  # None: (a)'s own median is not reached
    best_at_budget: float
    trials: float
    work: float  # epochs or env steps
    pruned: float
    failed: int
    startup: float
    efficiency: float
    wall: float
    budget: float
    idle: tuple[float, float, float]
    first_trial: float  # nan: no trial
    trial_median: float


@dataclass(frozen=True)
class Figures:
    obj: Objective
    target: float
    plain_best: float  # the median over seeds of (a)'s best
    rows: list[Row]

    def row(self, variant: str) -> Row | None:
        return next((r for r in self.rows if r.variant == variant), None)


def target_of(obj: Objective, plain_best: float) -> float:
    step = TARGET_FRACTION * abs(plain_best)
    return plain_best - step if obj.mode == "max" else plain_best + step


def figures(obj: Objective, runs: list[Run]) -> Figures:
    plain = [r for r in runs if r.variant == "plain"]
    plain_best = med([r.best(obj) for r in plain])
    target = target_of(obj, plain_best)
    t_plain = med([r.time_to(obj, target) for r in plain])
    rows = []
    for variant in VARIANTS:
        rs = [r for r in runs if r.variant == variant]
        if not rs:
            continue
        times = [r.time_to(obj, target) for r in rs]
        t = med(times)
        speedup = None if math.isinf(t_plain) else t_plain / max(t, 1e-9)
        idles = [r.idle() for r in rs]
        rows.append(
            Row(
                variant=variant,
                time_to_target=t,
                reached=sum(not math.isinf(x) for x in times),
                seeds=len(rs),
                speedup=speedup,
                best_at_budget=med([r.best_at(obj, r.budget) for r in rs]),
                trials=med([r.n_trials for r in rs]),
                work=med([r.reports() for r in rs]),
                pruned=med([r.count("PRUNED") for r in rs]),
                failed=sum(r.count("FAILED") for r in rs),
                startup=med([r.startup for r in rs]),
                efficiency=med([r.efficiency for r in rs]),
                wall=med([r.wall for r in rs]),
                budget=med([r.budget for r in rs]),
                idle=(
                    med([i[0] for i in idles]),
                    med([i[1] for i in idles]),
                    med([i[2] for i in idles]),
                ),
                first_trial=finite_median([r.first_trial() for r in rs]),
                trial_median=finite_median([r.trial_median() for r in rs]),
            )
        )
    return Figures(obj, target, plain_best, rows)


def value_text(value: float) -> str:
    return "none" if math.isinf(value) else f"{value:.4g}"


def speedup_text(row: Row, fig: Figures) -> str:
    if row.speedup is None:
        return "n/a ((a) did not reach it in the median)"
    if math.isinf(row.time_to_target):
        plain = fig.row("plain")
        bound = plain.time_to_target / row.budget if plain else math.nan
        return f"< {bound:.2f}x"
    return f"{row.speedup:.2f}x"


def meets(row: Row, fig: Figures) -> bool:
    """>= GOAL x sooner to the target, and the best at T_a at least (a)'s median best."""
    return (
        row.speedup is not None
        and not math.isinf(row.time_to_target)
        and row.speedup >= GOAL
        and fig.obj.better(row.best_at_budget, fig.plain_best)
    )


def table(fig: Figures) -> str:
    unit = fig.obj.unit
    rows = []
    for r in fig.rows:
        reached = f"{r.reached}/{r.seeds} reached"
        t = (
            f"not reached (> {r.budget:.0f} s; {reached})"
            if math.isinf(r.time_to_target)
            else f"{r.time_to_target:.1f} s ({reached})"
        )
        speed = speedup_text(r, fig)
        name = VARIANTS[r.variant]
        if r.variant != "plain" and meets(r, fig):
            name, speed = f"**{name}**", f"**{speed}**"
        trials = f"{r.trials:.0f}" + (f" ({r.failed} failed in all)" if r.failed else "")
        rows.append(
            [
                name,
                t,
                speed,
                value_text(r.best_at_budget),
                trials,
                f"{r.work:.0f}",
                f"{r.pruned:.0f}",
                seconds(r.startup),
                f"{r.efficiency:.2f}",
            ]
        )
    return c.table(
        [
            "variant",
            "time to target (median)",
            "speed-up",
            "best at T_a",
            "trials",
            unit,
            "pruned",
            "start-up",
            "efficiency",
        ],
        rows,
    )


def where_time_goes(fig: Figures) -> str:
    """A short paragraph from the figures: start-up, warm-up, pruning, idle workers."""
    parts: list[str] = []
    plain, fifo = fig.row("plain"), fig.row("fifo")
    sweeps = [r for r in fig.rows if r.variant != "plain"]
    if plain and sweeps:
        starts = ", ".join(f"{SHORT[r.variant]} {seconds(r.startup)}" for r in sweeps)
        finite = [r.startup for r in sweeps if not math.isinf(r.startup)]
        share = (
            f"; until then both cores idle, up to {max(finite) / plain.budget:.0%} of the "
            f"budget T_a ({plain.budget:.0f} s)"
            if finite
            else ""
        )
        parts.append(
            f"Start-up (spawn to the first trial): (a) {seconds(plain.startup)}, {starts}{share}."
        )
        warm = ", ".join(
            f"{SHORT[r.variant]} {seconds(r.first_trial)} (median {seconds(r.trial_median, 2)})"
            for r in fig.rows
            if not math.isnan(r.first_trial)
        )
        parts.append(
            f"The first trial of a run takes longer than the others (what the objective "
            f"imports and loads on first use, in every trial process): {warm}."
        )
    for r in fig.rows:
        if r.variant in ("asha", "ray", "promote") and r.trials:
            versus = (
                f" (FIFO: {fifo.trials:.0f} trials, {fifo.work:.0f} {fig.obj.unit})" if fifo else ""
            )
            parts.append(
                f"{SHORT[r.variant]} stopped {r.pruned:.0f} of {r.trials:.0f} trials early and "
                f"spent {r.work:.0f} {fig.obj.unit}, {r.work / r.trials:.1f} a trial{versus}."
            )
    idle = []
    for r in sweeps:
        if not r.trials:
            idle.append(f"{SHORT[r.variant]} ran no trial in {r.wall:.0f} s")
            continue
        idle.append(
            f"{SHORT[r.variant]} {r.idle[1]:.0f} core-s between the first trial and T_a, then "
            f"{r.wall - r.budget:.0f} s past T_a ({r.idle[2]:.0f} core-s idle)"
        )
    if idle:
        parts.append(
            "Idle workers (medians): "
            + "; ".join(idle)
            + ". After the budget no trial starts and a run waits for the trials in flight "
            "(a core idles once its trial ends); only what ended by T_a counts."
        )
    if plain:
        parts.append(
            f"The plain study runs one trial at a time: efficiency {plain.efficiency:.2f} of "
            f"{WORKERS} cores."
        )
    return " ".join(parts)


# -- the plot -----------------------------------------------------------------------------


def plot(figs: list[Figures], runs: dict[str, list[Run]], path: Path) -> None:
    """Best so far against wall time, one panel per objective: each run a faint step line,
    each variant's median over seeds bold (where every seed has a COMPLETE trial)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(figs), figsize=(6.5 * len(figs), 4.6), squeeze=False)
    for ax, f in zip(axes[0], figs, strict=True):
        obj = f.obj
        rs = runs[obj.key]
        end = max(r.wall for r in rs)
        grid = [end * i / 400 for i in range(401)]
        for variant in VARIANTS:
            vr = [r for r in rs if r.variant == variant]
            if not vr:
                continue
            color = COLORS[variant]
            for r in vr:
                curve = r.curve(obj)
                if curve:
                    xs = [x for x, _ in curve] + [r.wall]
                    ys = [y for _, y in curve] + [curve[-1][1]]
                    ax.step(xs, ys, where="post", color=color, alpha=0.3, lw=1)
            xs, ys = [], []
            last = max(r.wall for r in vr)
            for t in [g for g in grid if g <= last]:
                values = [r.best_at(obj, t) for r in vr]
                if all(not math.isinf(v) for v in values):
                    xs.append(t)
                    ys.append(med(values))
            # widest first: a variant whose curve is the same as another's stays visible
            width = 3.8 - 0.6 * list(VARIANTS).index(variant)
            ax.plot(xs, ys, color=color, lw=width, label=SHORT[variant])
        ax.axhline(f.target, color="black", ls="--", lw=1, label=f"target {f.target:.4g}")
        budget = med([r.budget for r in rs if r.variant == "plain"])
        ax.axvline(budget, color="black", ls=":", lw=1, label=f"T_a {budget:.0f} s (median)")
        ax.set_title(f"{obj.key}: {obj.metric} ({obj.mode}), {obj.size_text()}", fontsize=10)
        ax.set_xlabel("wall time from the spawn (s)")
        ax.set_ylabel(f"best {obj.metric} so far (COMPLETE trials)")
        ax.set_xlim(0, end)
        finals = [r.best(obj) for r in rs if not math.isinf(r.best(obj))] + [f.target]
        low, high = min(finals), max(finals)
        span = max(high - low, 0.01 * abs(high), 1e-9)
        ax.set_ylim(low - span, high + 0.25 * span)  # the range where the bests are
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


# -- the document -------------------------------------------------------------------------


def versions() -> str:
    out = []
    for name in VERSIONS:
        try:
            out.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            out.append(f"{name} (not installed)")
    return ", ".join(out)


def verdict(figs: list[Figures]) -> str:
    """Per objective: met (by which variants) or not (and the fastest variant)."""
    parts = []
    for f in figs:
        good = [SHORT[r.variant] for r in f.rows if r.variant != "plain" and meets(r, f)]
        if good:
            parts.append(f"{f.obj.key}: **met** (by {', '.join(good)})")
            continue
        ranked = [
            r
            for r in f.rows
            if r.variant != "plain" and r.speedup is not None and not math.isinf(r.time_to_target)
        ]
        best = max(ranked, key=lambda r: r.speedup or 0.0, default=None)
        fastest = (
            f" (fastest: {SHORT[best.variant]}, {speedup_text(best, f)})"
            if best
            else " (no sweepspec variant reached the target by T_a in the median)"
        )
        parts.append(f"{f.obj.key}: **not met**{fastest}")
    return "Result: " + "; ".join(parts) + "."


def render(
    figs: list[Figures],
    runs: dict[str, list[Run]],
    args: argparse.Namespace,
    png: str,
    command: str,
    machine: str,
) -> str:
    lines = [
        f"Goal (from the issue): `sweepspec run` reaches the target at least {GOAL:g}x sooner "
        "than the plain sequential Optuna study (a), at equal or better final quality (the "
        "median best at T_a at least (a)'s median best). " + verdict(figs),
        "",
        f"![best so far against wall time, per objective]({png})",
        "",
    ]
    for f in figs:
        obj = f.obj
        lines += [
            f"**{obj.key}** (`{obj.function}`, metric `{obj.metric}`, {obj.mode}; "
            f"{obj.size_text()} for (a); ASHA `max_t: {obj.max_t}, grace_period: {obj.grace}, "
            f"reduction_factor: {obj.reduction}`): (a)'s median best {f.plain_best:.4g}, "
            f"target **{f.target:.4g}**; budget T_a median "
            f"{med([r.budget for r in runs[obj.key] if r.variant == 'plain']):.1f} s.",
            "",
            table(f),
            "",
            "Where the time goes: " + where_time_goes(f),
            "",
        ]
    first = args.first_seed
    before = max(r.others_before for rs in runs.values() for r in rs)
    during = [r.others_during for rs in runs.values() for r in rs if r.others_during is not None]
    lines += [
        f"* {args.seeds} seed(s) s = {first}..{first + args.seeds - 1}: TPE's seed "
        "(`TPESampler(seed=s)`, "
        "`searcher: {type: tpe, seed: s}`, default options) and the objective's `seed`. Medians "
        "over the seeds.",
        "* Spaces: those of `sweeps/classifier.yaml` and `sweeps/dqn.yaml`, without their "
        "constraints and `try_first` (which the plain study cannot say), the same in every "
        "variant.",
        "* Target: m = the median over seeds of (a)'s best value, target = m - "
        f"{TARGET_FRACTION:g} x |m| for a max metric (0.995 m when m > 0; m + 0.005 |m| for a "
        "min metric). Time to target: from the spawn of the process (`time.time()` just "
        "before it) to the end of the first COMPLETE trial reaching the target (sweepspec: "
        "`ended_at` of `trials.csv`; (a): Optuna's `datetime_complete`). A run that does not "
        "reach it by T_a (a trial still running at the budget that reaches it later does not "
        'count) counts as infinite (> T_a) in the median: "not reached".',
        "* Speed-up: (a)'s median time to target / the variant's. Best at T_a: the best "
        "COMPLETE value that ended by T_a (the wall time of (a) with the same seed), median "
        "over seeds. Pruned trials' values are partial: they never count as a best, nor for "
        "the time to target.",
        f"* Equal wall time: (b)-(e) get `num_samples: {SAMPLES_FACTOR} N` and `stop: {{sweep: "
        "{time_budget: T_a}}` (seconds, as a user would write it); sweepspec counts the budget "
        "from its own start, launches no trial after it and lets the running ones finish, so "
        "its process runs past T_a; only what ended by T_a counts for the best at T_a.",
        f"* Trials: finished trials (median); {fig_units(figs)}: the sum of every trial's "
        "reports (`reports/<id>.jsonl`; (a): `report()` calls), pruned: trials ASHA stopped "
        "early ((e): paused at a rung and never promoted; a promoted trial is one trial, and "
        "only its runs, not its pauses, count as busy). Start-up: spawn to the first trial's "
        "start. Efficiency: busy trial-seconds / "
        f"({WORKERS} x wall), wall from the spawn to the exit. Idle core-seconds: {WORKERS} "
        "cores minus the trials running, integrated.",
        "* ASHA: `max_t` = the reports of a full trial, `reduction_factor: 2` and the grace "
        "period of the example sweeps (3 epochs; 4 reports of 1000 env steps), at most half of "
        "`max_t`. Optuna backend: Optuna's `SuccessiveHalvingPruner`; Ray: Ray Tune's "
        "`ASHAScheduler`; (e): sweepspec's promotion-based ASHA (`mode: promote`, the same "
        "rungs). 2 trials at a time, `per_trial: {cpu: 1}`.",
        "* The objectives save a checkpoint at every report in every variant (the plain "
        "study's adapter drops it); sweepspec also writes it to the trial directory when "
        "cheap enough.",
        f"* Other processes used up to {before:.2f} cores just before a run and up to "
        f"{max(during, default=0.0):.2f} during (a), (b), (c) and (e) (Ray's processes cannot be "
        "told apart from others); the benchmark first waits up to "
        f"{QUIET_WAIT_S / 60:.0f} minutes for a quiet machine, each run up to {RUN_WAIT_S:.0f} s "
        "more (`SWEEPSPEC_BENCH_MAX_OTHERS` sets what quiet is).",
        "",
        "The plain sequential study (a) for the classifier (the DQN's differs in its "
        "`suggest_*` lines, below; the last line only reports the times to the benchmark):",
        "",
        "```python",
        figs[0].obj.plain_script().rstrip() if figs else "",
        "```",
        "",
    ]
    dqn = next((f.obj for f in figs if f.obj.key == "dqn"), None)
    if dqn is not None:
        lines += ["```python", dqn.suggest, "```", ""]
    lines += [
        f"Versions: {versions()}.",
        "",
        f"Command: `{command}`",
        "",
        f"Machine: {machine}.",
    ]
    return "\n".join(lines)


def fig_units(figs: list[Figures]) -> str:
    return " / ".join(dict.fromkeys(f.obj.unit for f in figs)) or "work"


# -- main ---------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, help="seeds 0..N-1 (default 3; 1 with --quick)")
    parser.add_argument("--objectives", default="classifier,dqn", help="classifier,dqn")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds start here (default 0)")
    parser.add_argument(
        "--variants",
        default="fifo,asha,ray,promote",
        help="besides (a) the plain study: fifo,asha,ray,promote",
    )
    parser.add_argument("--classifier-trials", type=int, default=24)
    parser.add_argument("--classifier-epochs", type=int, default=20)
    parser.add_argument("--dqn-trials", type=int, default=6)
    parser.add_argument("--dqn-steps", type=int, default=8000, help="total_timesteps a trial")
    parser.add_argument("--dqn-report-every", type=int, default=1000)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for a smoke test: classifier 12 x 8 epochs, DQN 3 x 2000 steps (a "
        "report every 500), 1 seed",
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the run directories (and results.json)"
    )
    parser.add_argument("--save", type=Path, help="write the measurements (JSON) here")
    parser.add_argument(
        "--load", type=Path, help="render saved measurements (--save) instead of measuring"
    )
    parser.add_argument("--plot", type=Path, help="where the PNG goes (default: see --write)")
    parser.add_argument(
        "--section",
        help='write "## Time to target: SECTION" (and its own plot) instead of the main section',
    )
    parser.add_argument(
        "--write", action="store_true", help="update docs/benchmarks.md and docs/*.png"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.classifier_trials, args.classifier_epochs = 12, 8
        args.dqn_trials, args.dqn_steps, args.dqn_report_every = 3, 2000, 500
    if args.seeds is None:
        args.seeds = 1 if args.quick else 3
    keys = [k.strip() for k in args.objectives.split(",") if k.strip()]
    bad = [k for k in keys if k not in ("classifier", "dqn")]
    if bad or not keys:
        parser.error(f"--objectives: unknown {', '.join(bad) or '(none)'}; use classifier,dqn")
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    wrong = [v for v in variants if v not in VARIANTS or v == "plain"]
    if wrong:
        parser.error(f"--variants: unknown {', '.join(wrong)}; use fifo,asha,ray,promote")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    args.objective_keys = keys
    args.variant_keys = variants
    return args


SIZES = (
    "seeds",
    "first_seed",
    "objective_keys",
    "variant_keys",
    "classifier_trials",
    "classifier_epochs",
    "dqn_trials",
    "dqn_steps",
    "dqn_report_every",
)


def save(path: Path, args: argparse.Namespace, runs: dict[str, list[Run]], machine: str) -> None:
    """The measurements as JSON (``--load`` renders them again without measuring)."""
    data = {
        "sizes": {k: getattr(args, k) for k in SIZES},
        "command": c.command_line(),
        "machine": machine,
        "date": c.today(),
        "runs": {k: [asdict(r) for r in rs] for k, rs in runs.items()},
    }
    path.write_text(json.dumps(data, indent=1))


def load(path: Path, args: argparse.Namespace) -> tuple[dict[str, list[Run]], str, str, str]:
    """(runs, command, machine, date) saved by :func:`save`; the sizes go into ``args``."""
    data = json.loads(path.read_text())
    for k in SIZES:
        setattr(args, k, data["sizes"].get(k, 0 if k == "first_seed" else None))
    runs = {
        k: [Run(**{**r, "trials": [Finished(**t) for t in r["trials"]]}) for r in rs]
        for k, rs in data["runs"].items()
    }
    return runs, data["command"], data["machine"], data["date"]


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.load:
        runs, command, machine, date = load(args.load, args)
    else:
        start_load = os.getloadavg()
        tmp = Path(tempfile.mkdtemp(prefix="sweepspec-ttt-"))
        objs = [objectives(args)[k] for k in args.objective_keys]
        try:
            seeds = range(args.first_seed, args.first_seed + args.seeds)
            runs = measure(objs, seeds, args.variant_keys, tmp)
        finally:
            if args.keep:
                print(f"run directories kept in {tmp}", file=sys.stderr)
            else:
                shutil.rmtree(tmp, ignore_errors=True)
        command, machine, date = c.command_line(), c.machine(start_load), c.today()
        saved = args.save or (tmp / "results.json" if args.keep else None)
        if saved is not None:
            save(saved, args, runs, machine)
            print(f"measurements saved to {saved} (render again: --load {saved})", file=sys.stderr)
    objs = [objectives(args)[k] for k in args.objective_keys]
    figs = [figures(o, runs[o.key]) for o in objs]
    title, slug = TITLE, ""
    if args.section:  # a section of its own, beside the main one (e.g. more seeds)
        title = f"{TITLE}: {args.section}"
        slug = "-" + re.sub(r"[^a-z0-9]+", "-", args.section.lower()).strip("-")
    png = args.plot or (
        PNG.with_stem(PNG.stem + slug)
        if args.write
        else Path(tempfile.gettempdir()) / f"sweepspec_time_to_target{slug}.png"
    )
    plot(figs, runs, png)
    print(f"plot: {png}", file=sys.stderr)
    try:
        shown = os.path.relpath(png, c.DOC.parent)
    except ValueError:
        shown = str(png)
    body = render(figs, runs, args, shown, command, f"{machine}. Date: {date}")
    c.publish(title, body, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
