"""The driver side of the ray backend: the searcher adapter (:class:`SpecSearch`), PBT that
stays inside the space (:class:`SpecPBT`), the stopper (:class:`SpecStopper`) and the callback
that keeps the run's exactly-once ledger (:class:`SweepCallback`). Imports Ray Tune and Optuna;
never imported by trial workers (they load only :mod:`sweepspec.run.ray_trainable`).
"""

from __future__ import annotations

import copy
import json
import os
import signal
import statistics
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ray.tune import Callback
from ray.tune.schedulers import (
    ASHAScheduler,
    FIFOScheduler,
    HyperBandScheduler,
    MedianStoppingRule,
    PopulationBasedTraining,
)
from ray.tune.schedulers.pbt import _explore
from ray.tune.search import ConcurrencyLimiter, SearchGenerator
from ray.tune.search.optuna import OptunaSearch
from ray.tune.stopper import Stopper

from sweepspec.compile.optuna_backend import encode_choice
from sweepspec.compile.ray_backend import SpecSpace, is_finite_number
from sweepspec.feasibility import MAX_REJECTIONS, too_many_rejections
from sweepspec.run.ray_trainable import (
    CHECKPOINT_KEY,
    FAILED_KEY,
    ITERATIONS_KEY,
    TrialFailed,
    active_values,
    json_metrics,
    record_from,
)
from sweepspec.run.stops import TrialStopRule

__all__ = [
    "SPEC_SCHEDULERS",
    "SpecPBT",
    "SpecSearch",
    "SpecSearchGenerator",
    "SpecStopper",
    "SweepCallback",
    "stopped_state",
]

SHORT_TRIAL_S = 2.0
SHORT_TRIAL_AFTER = 4


# -- trial outcomes ----------------------------------------------------------------


def stopped_state(plan: Any, result: Mapping[str, Any]) -> str:
    """A trial that Ray stopped at ``result``: COMPLETE when a ``stop.trial`` rule or the
    scheduler's ``max_t`` was reached (it ran its full length), else PRUNED."""
    rule = TrialStopRule(list(plan.stop_trial), None, plan.time_attr)
    if rule.reached(rule_values(result)):
        return "COMPLETE"
    step = result.get(plan.time_attr)
    if plan.max_t is not None and is_finite_number(step) and step >= plan.max_t:
        return "COMPLETE"
    return "PRUNED"


def rule_values(result: Mapping[str, Any]) -> dict[str, Any]:
    """``training_iteration`` counts the objective's reports (not our final extra report)."""
    values = dict(result)
    if ITERATIONS_KEY in result:
        values["training_iteration"] = result[ITERATIONS_KEY]
    return values


# -- searcher ---------------------------------------------------------------------------


class SpecSearch(OptunaSearch):
    """``OptunaSearch`` over :class:`SpecSpace` with the Optuna backend's sampler.

    On top of Ray's adapter: configs that break a constraint are rejected here (told to the
    sampler as the Optuna backend does, then asked again), grid values are enqueued evenly,
    results without a finite metric never reach the sampler, and a trial that the scheduler
    stopped early is told as PRUNED (Ray's adapter would tell its partial value as COMPLETE).
    """

    def __init__(self, plan: Any, seed: int | None) -> None:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._plan = plan
        self._spec_space = SpecSpace(plan.optuna)
        self._grid_counts = [0] * len(plan.optuna.grid_points)
        self._seen_iteration: dict[str, int] = {}
        self._reported_step: dict[str, int] = {}
        #: params key -> Ray trial ids of adopted trials not replayed yet (see :meth:`adopt`)
        self._replays: dict[str, list[str]] = {}
        points = [{k: encode_choice(v) for k, v in p.items()} for p in plan.try_first]
        super().__init__(
            space=self._spec_space,
            metric=plan.metric,
            mode=plan.mode,
            points_to_evaluate=points or None,
            sampler=plan.optuna.build_sampler(seed),
            study_name=plan.optuna.study_name,
        )

    @property
    def study(self) -> Any:
        study: Any = self.__dict__["_ot_study"]
        return study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        while True:
            ot_trial, fixed, values = self._ask_feasible()
            if not self._is_replay(ot_trial, values):
                break
        self._ot_trials[trial_id] = ot_trial
        self._count_grid(values)
        return {**fixed, **values}

    def _ask_feasible(self) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        """An Optuna trial whose config keeps the constraints: ``(trial, fixed, sampled)``."""
        import optuna

        study = self.study
        plan = self._plan.optuna
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        if not waiting and plan.grid_points:
            self._enqueue_grid_point()
        space = plan.space
        for _ in range(MAX_REJECTIONS):
            ot_trial = study.ask()
            values = self._spec_space.sample(ot_trial)
            fixed = space.fixed_values(values)
            violated = space.violated({**fixed, **values})
            if not violated:
                return ot_trial, fixed, values
            self._reject(ot_trial, violated)
        raise too_many_rejections()

    def _is_replay(self, ot_trial: Any, values: Mapping[str, Any]) -> bool:
        """After a resume, a restored sampler proposes again what it proposed after Ray's
        last snapshot (a seeded random or QMC sequence, a try_first or grid point). A config
        equal to one of those trials, which had ended and were adopted, is not run twice: the
        proposal is told as FAIL (samplers skip it) and the searcher asks again."""
        import optuna

        waiting = self._replays.get(_params_key(values))
        if not waiting:
            return False
        ot_trial.set_user_attr("replay_of", waiting.pop(0))
        self.study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
        return True

    def _reject(self, ot_trial: Any, violated: list[int]) -> None:
        import optuna

        ot_trial.set_user_attr("rejected", [int(i) for i in violated])
        ot_trial.set_constraint("sweepspec", float(len(violated)))
        worst = self._worst_values()
        if worst is None:
            self.study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(ot_trial, worst)

    def _worst_values(self) -> list[float] | None:
        import optuna

        done = [
            t
            for t in self.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            if not t.user_attrs.get("rejected") and t.values
        ]
        if not done:
            return None
        worst = []
        for i, direction in enumerate(self._plan.optuna.directions):
            vals = [t.values[i] for t in done]
            worst.append(min(vals) if direction == "maximize" else max(vals))
        return worst

    def _grid_key(self, point: Mapping[str, Any]) -> tuple[Any, ...]:
        return tuple(
            json.dumps(point.get(k), sort_keys=True, default=str)
            for k in sorted(self._plan.optuna.grid_points[0])
        )

    def _enqueue_grid_point(self) -> None:
        plan = self._plan.optuna
        i = self._grid_counts.index(min(self._grid_counts))
        point = plan.grid_points[i]
        encoded = {
            k: plan.suggest[k].kwargs["choices"][plan.suggest[k].options.index(v)]
            for k, v in point.items()
        }
        self.study.enqueue_trial(encoded, user_attrs={"grid": True})

    def _count_grid(self, values: Mapping[str, Any]) -> None:
        points = self._plan.optuna.grid_points
        if not points:
            return
        keys = [self._grid_key(p) for p in points]
        key = self._grid_key(values)
        if key in keys:
            self._grid_counts[keys.index(key)] += 1

    def on_trial_result(self, trial_id: str, result: dict[str, Any]) -> None:
        step = int(result.get("training_iteration", 0))
        self._seen_iteration[trial_id] = step
        metric = self._plan.single_metric
        if metric is None or not is_finite_number(result.get(metric)):
            return
        if step <= self._reported_step.get(trial_id, -1):
            return  # a PBT clone goes on at its donor's step: Optuna takes each step once
        if trial_id in self._ot_trials:
            self._reported_step[trial_id] = step
            super().on_trial_result(trial_id, result)

    def on_trial_complete(
        self, trial_id: str, result: dict[str, Any] | None = None, error: bool = False
    ) -> None:
        seen = self._seen_iteration.pop(trial_id, None)
        self._reported_step.pop(trial_id, None)
        if trial_id not in self._ot_trials or trial_id in self._completed_trials:
            return
        if result is not None and FAILED_KEY in result:
            result, error = None, True
        if result is not None and not error:
            # natural end: Ray marks the last result (one the searcher saw) done; a trial
            # stopped at a result never showed it to the searcher, and one that the scheduler
            # ended while paused or pending (HyperBand) is not done
            natural = bool(result.get("done")) and int(result.get("training_iteration", 0)) == seen
            if not natural and stopped_state(self._plan, result) == "PRUNED":
                result = None  # OptunaSearch tells a result-less, error-less trial as PRUNED
            elif not all(is_finite_number(result.get(m)) for m in self._plan.directions):
                result, error = None, True
        super().on_trial_complete(trial_id, result=result, error=error)

    def add_warm_trials(self, trials: Iterable[tuple[dict[str, Any], list[float]]]) -> int:
        """``--warm-start``: old (params, values) that fit the space, told before any trial."""
        return sum(
            self._add_finished(params, values, "COMPLETE", {"warm": True})
            for params, values in trials
        )

    def adopt(self, ends: Iterable[Mapping[str, Any]]) -> int:
        """On resume: tell the sampler the trials that ended (``ledger.jsonl`` end events)
        after Ray's last snapshot, which the restored searcher has never seen, and note their
        configs so that a replayed proposal of one is not run again. Idempotent: a trial
        adopted by an earlier session (and saved in a later snapshot) is skipped."""
        from sweepspec.compile.optuna_backend import encode_choice

        known = {t.user_attrs.get("ray_id") for t in self.study.get_trials(deepcopy=False)}
        adopted = 0
        for end in ends:
            ray_id = str(end.get("ray_id"))
            if ray_id in known:
                continue
            params = dict(end.get("params") or {})
            metrics = end.get("metrics") or {}
            values = [metrics.get(m) for m in self._plan.directions]
            state = str(end.get("state", "FAILED"))
            if state == "COMPLETE" and not all(is_finite_number(v) for v in values):
                state = "FAILED"
            encoded = {k: encode_choice(v) for k, v in params.items()}
            self._add_finished(encoded, values, state, {"ray_id": ray_id})
            self._count_grid(params)
            self._replays.setdefault(_params_key(params), []).append(ray_id)
            adopted += 1
        return adopted

    def _add_finished(
        self, params: Mapping[str, Any], values: list[Any], state: str, attrs: dict[str, Any]
    ) -> bool:
        """Add a finished trial (encoded params) to the study; False if its params do not fit
        the space (or it is COMPLETE without a value for each objective)."""
        import optuna

        from sweepspec.run.warm_start import fitting

        plan = self._plan.optuna
        if state == "COMPLETE" and len(values) != len(plan.directions):
            return False
        fit = fitting(plan, params)
        if fit is None:
            return False
        kept, dists = fit
        states = {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED"}
        trial_state = optuna.trial.TrialState[states.get(state, "FAIL")]
        self.study.add_trial(
            optuna.trial.create_trial(
                params=kept,
                distributions=dists,
                values=[float(v) for v in values] if trial_state.name == "COMPLETE" else None,
                state=trial_state,
                user_attrs=attrs,
            )
        )
        return True


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


class SpecSearchGenerator(SearchGenerator):
    """Ray's ``SearchGenerator`` around ``ConcurrencyLimiter(SpecSearch)`` whose trial budget
    and concurrency are this session's: on ``Tuner.restore`` Ray would bring back the first
    session's ``num_samples`` (and its concurrency, and ``num_samples=1`` when it restarts an
    experiment whose state was never saved). A spec may raise or lower them on resume."""

    def __init__(self, searcher: Any, num_samples: int, concurrency: int | None) -> None:
        inner = searcher if not concurrency else ConcurrencyLimiter(searcher, concurrency)
        super().__init__(inner)
        self.override(num_samples, concurrency)

    def override(self, num_samples: int, concurrency: int | None) -> None:
        self._sweepspec_total = num_samples
        self._sweepspec_concurrency = concurrency
        self._apply()

    def _apply(self) -> None:
        total = getattr(self, "_sweepspec_total", None)
        if total is not None:
            self._total_samples = total
        concurrency = getattr(self, "_sweepspec_concurrency", None)
        if concurrency and isinstance(self.searcher, ConcurrencyLimiter):
            self.searcher.max_concurrent = concurrency

    def add_configurations(self, experiments: Any) -> None:
        super().add_configurations(experiments)
        self._apply()

    def adopt(self, ends: list[dict[str, Any]]) -> None:
        """Trials that ended after Ray's last snapshot, for the searcher to adopt once its
        state is restored (:meth:`SpecSearch.adopt`)."""
        self._sweepspec_adopt = ends

    def restore_from_dir(self, dirpath: str) -> None:
        super().restore_from_dir(dirpath)
        self._adopt_pending()

    def next_trial(self) -> Any:
        self._adopt_pending()  # also when Ray had no searcher state to restore
        return super().next_trial()  # type: ignore[no-untyped-call]

    def _adopt_pending(self) -> None:
        ends = self.__dict__.pop("_sweepspec_adopt", None)
        if ends:
            base: Any = self.searcher
            while hasattr(base, "searcher"):
                base = base.searcher
            base.adopt(ends)

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self._apply()


# -- scheduler and stopper --------------------------------------------------------------


class _NoSearchAlg:
    """A view of the TuneController without its search algorithm: Ray's PBT refuses any
    searcher, but ours only picks the initial population (mutations stay PBT's)."""

    search_alg = None

    def __init__(self, controller: Any) -> None:
        self._controller = controller

    def __getattr__(self, name: str) -> Any:
        return getattr(self._controller, name)


def force_snapshot(tune_controller: Any) -> bool:
    """Make Ray save the experiment state at the end of this step (its own "forced sync",
    which it also uses after a trial's ``num_to_keep`` checkpoints). False when this Ray's
    internals differ (a test pins that they do not)."""
    controller = getattr(tune_controller, "_tune_controller", tune_controller)
    manager = getattr(controller, "_checkpoint_manager", None)
    if manager is None or not hasattr(manager, "_should_force_sync_up"):
        return False
    manager._should_force_sync_up = True
    return True


class SnapshotOnCheckpoint:
    """A scheduler mixin: the experiment state is saved at the end of every step in which a
    trial saved a checkpoint, and otherwise on Ray's own period. Ray deletes a trial's older
    checkpoints (it keeps ``num_to_keep``), so the last snapshot must name each trial's newest
    one: a restore from a deleted checkpoint fails the trial.

    Trials added or ended since the last snapshot need no snapshot: on resume,
    :func:`sweepspec.run.ray_session.reconcile` keeps the ones that ended (``ledger.jsonl``
    has them) and starts the others over (a snapshot after every added trial cost about
    5 ms a trial here). Under Ray Client a resume cannot do that (``snapshot_each_trial``).
    """

    #: also snapshot after every step that adds a trial, so that every trial that can end is
    #: in the last snapshot (RayPlan.snapshot_each_trial)
    snapshot_each_trial = False

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        if self.snapshot_each_trial:
            force_snapshot(tune_controller)
        super().on_trial_add(tune_controller, trial)  # type: ignore[misc]

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict[str, Any]) -> str:
        if result.get(CHECKPOINT_KEY):
            force_snapshot(tune_controller)
        decision: str = super().on_trial_result(tune_controller, trial, result)  # type: ignore[misc]
        return decision


class SpecFIFO(SnapshotOnCheckpoint, FIFOScheduler):
    """FIFOScheduler with :class:`SnapshotOnCheckpoint`."""


class SpecASHA(SnapshotOnCheckpoint, ASHAScheduler):
    """ASHAScheduler with :class:`SnapshotOnCheckpoint`."""


class SpecHyperBand(SnapshotOnCheckpoint, HyperBandScheduler):
    """HyperBandScheduler with :class:`SnapshotOnCheckpoint`."""


class SpecMedian(SnapshotOnCheckpoint, MedianStoppingRule):
    """MedianStoppingRule with :class:`SnapshotOnCheckpoint`."""


class SpecPBT(SnapshotOnCheckpoint, PopulationBasedTraining):
    """PBT whose mutations stay inside the space: values are clipped to their bounds (and
    steps), only parameters present in the donor's config mutate, and a perturbed config
    that breaks a constraint is drawn again (after 100 tries, the donor's config is kept)."""

    def __init__(self, plan: Any, **kwargs: Any) -> None:
        self._spec_plan = plan
        super().__init__(hyperparam_mutations=plan.build_mutations(), **kwargs)

    def on_trial_add(self, tune_controller: Any, trial: Any) -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # num_to_keep advice: ours keeps 4
            controller: Any = _NoSearchAlg(tune_controller)
            super().on_trial_add(controller, trial)

    def _get_new_config(self, trial: Any, trial_to_clone: Any) -> tuple[dict[str, Any], Any]:
        clone = trial_to_clone.config
        mutations = {k: v for k, v in self._hyperparam_mutations.items() if k in clone}
        space = self._spec_plan.space
        for _ in range(100):
            factors: Any = self._perturbation_factors
            new, ops = _explore(
                clone, mutations, self._resample_probability, factors, self._custom_explore_fn
            )
            self._clip(new)
            values = active_values(self._spec_plan, new)
            if not space.violated({**space.fixed_values(values), **values}):
                return new, ops
        return copy.deepcopy(clone), {}

    def _clip(self, config: dict[str, Any]) -> None:
        for path, s in self._spec_plan.optuna.suggest.items():
            if path not in config or s.method == "categorical":
                continue
            low, high = s.kwargs["low"], s.kwargs["high"]
            v = min(high, max(low, config[path]))
            step = s.kwargs.get("step")
            if step:
                v = min(high, low + round((v - low) / step) * step)
            config[path] = round(v) if s.method == "int" else float(v)


#: Scheduler type (the spec's) -> the class that runs it.
SPEC_SCHEDULERS: dict[str, type] = {
    "fifo": SpecFIFO,
    "asha": SpecASHA,
    "hyperband": SpecHyperBand,
    "median": SpecMedian,
    "pbt": SpecPBT,
}


class SpecStopper(Stopper):
    """``stop.trial`` thresholds (any comparison, not only Ray's ``>=``), and the whole-sweep
    stops: ``stop.sweep.target`` and ``trials.max_failed`` (told by the driver's callback)."""

    def __init__(self, plan: Any) -> None:
        self.rule = TrialStopRule(list(plan.stop_trial), None, plan.time_attr)
        self.target = dict(plan.target) if plan.target else None
        self.directions = dict(plan.directions)
        self.max_failed = plan.max_failed
        self.max_t = plan.max_t
        self.time_attr = plan.time_attr
        self.failed = 0
        self.reason: str | None = None

    def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
        if FAILED_KEY in result:
            return True  # the trial failed for good: end it before the scheduler sees it
        values = rule_values(result)
        hit = self.rule.reached(values)
        step = result.get(self.time_attr)
        full = (
            hit
            or bool(result.get("done"))
            or (self.max_t is not None and is_finite_number(step) and step >= self.max_t)
        )
        if self.target and full and self.reason is None and self._target_reached(result):
            self.reason = "target"
        return hit

    def _target_reached(self, result: Mapping[str, Any]) -> bool:
        assert self.target is not None
        for name, value in self.target.items():
            v = result.get(name)
            if not is_finite_number(v):
                return False
            if (v < value) if self.directions.get(name, "max") == "max" else (v > value):
                return False
        return True

    def note_failure(self) -> None:
        self.failed += 1
        if self.max_failed is not None and self.failed >= self.max_failed and not self.reason:
            self.reason = f"max_failed: {self.failed} trials failed"

    def stop_all(self) -> bool:
        return self.reason is not None


# -- the driver's callback --------------------------------------------------------------


class SweepCallback(Callback):
    """Writes ``ledger.jsonl`` (exactly once per trial), drives the progress display and
    tells the stopper about failures. Runs in the driver."""

    def __init__(
        self, plan: Any, ledger_file: Any, stopper: Any, progress: Any, elapsed_before: float
    ) -> None:
        self.plan = plan
        self.file = ledger_file
        self.stopper = stopper
        self.progress = progress
        self.elapsed_before = elapsed_before
        self.started_at = time.monotonic()
        self.ledger = ledger_file.ledger()
        self.ended = set(ledger_file.ends())
        self.started = {e["ray_id"] for e in ledger_file.events()}
        self.ids = {
            e["ray_id"]: str(e.get("trial_id", e["ray_id"]))
            for e in ledger_file.events()
            if e.get("event") != "drop"  # a dropped trial keeps its id (the ledger does too)
        }
        self.stopped: dict[str, dict[str, Any]] = {}
        self.metrics: dict[str, dict[str, Any]] = {}
        self.recoveries: dict[str, int] = {}
        self.durations: list[float] = []
        self.warned = False
        self.last_update = 0.0
        self.interrupted = False
        #: called with the ledger after each trial's end (MLflow tracking); never pickled
        self.on_record: Callable[[Any], None] | None = None

    def __getstate__(self) -> dict[str, Any]:  # saved in tuner.pkl: no live objects
        state = dict(self.__dict__)
        state["progress"] = None
        state["on_record"] = None
        return state

    # -- helpers --

    def _tid(self, trial: Any) -> str:
        if trial.trial_id in self.ids:
            return self.ids[trial.trial_id]
        head = str(getattr(trial, "experiment_tag", "") or "").split("_", 1)[0]
        tid = str(int(head) - 1) if head.isdigit() else trial.trial_id
        if tid in self.ids.values():  # after a resume that kept trials Ray did not know
            tid = str(1 + max((int(v) for v in self.ids.values() if v.isdigit()), default=-1))
        self.ids[trial.trial_id] = tid
        return tid

    def _params(self, trial: Any) -> dict[str, Any]:
        values = active_values(self.plan, trial.config)
        return {p.path: values[p.path] for p in self.plan.space.sampled if p.path in values}

    def _user_metrics(self, result: dict[str, Any]) -> dict[str, Any]:
        from ray.tune.result import AUTO_RESULT_KEYS

        skip = {
            *AUTO_RESULT_KEYS,
            "done",
            "trial_id",
            "experiment_tag",
            "should_checkpoint",
            "__duplicate__",
            ITERATIONS_KEY,
        }
        return json_metrics(
            {k: v for k, v in result.items() if k not in skip and not k.startswith("sweepspec_")}
        )

    def _end(self, trial: Any, state: str, error: str | None) -> None:
        if trial.trial_id in self.ended:
            return
        self.ended.add(trial.trial_id)
        result = dict(trial.last_result or {})
        metrics = self.metrics.pop(trial.trial_id, None) or self._user_metrics(result)
        values = active_values(self.plan, trial.config)
        duration = result.get("time_total_s")
        item = {
            "event": "end",
            "ray_id": trial.trial_id,
            "trial_id": self._tid(trial),
            "state": state,
            "metrics": metrics,
            "params": self._params(trial),
            "config": self.plan.space.build_config(values),
            "iterations": int(result.get(ITERATIONS_KEY, result.get("training_iteration", 0)) or 0),
            "duration_s": round(float(duration), 3) if duration is not None else None,
            "attempts": 1 + self.recoveries.get(trial.trial_id, 0),
            "error": error,
        }
        self.file.append(item, sync=True)
        tid = item["trial_id"]
        self.ledger.records[tid] = record_from(item, tid)
        self.ledger.in_flight.discard(tid)
        if state == "FAILED":
            self.stopper.note_failure()
        elif duration is not None:
            self.durations.append(float(duration))
            self._maybe_warn_short()
        if self.progress is not None:
            self.progress.trial_done(tid, state, metrics, error)
        if self.on_record is not None:
            self.on_record(self.ledger)

    def _maybe_warn_short(self) -> None:
        if self.warned or len(self.durations) < SHORT_TRIAL_AFTER:
            return
        self.warned = True
        median = statistics.median(self.durations)
        if median < SHORT_TRIAL_S:
            print(
                f"warning: trials take {median:.2f} s (median); Ray's per-trial overhead "
                "and start-up dominate trials this short; backend: {type: optuna} runs "
                "them faster",
                file=sys.stderr,
                flush=True,
            )

    # -- Ray hooks --

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        if trial.trial_id in self.started:
            return
        self.started.add(trial.trial_id)
        tid = self._tid(trial)
        params = self._params(trial)
        self.file.append(
            {"event": "start", "ray_id": trial.trial_id, "trial_id": tid, "params": params},
            sync=False,
        )
        if tid not in self.ledger.records:
            from sweepspec.results import TrialRecord

            self.ledger.records[tid] = TrialRecord(tid, "RUNNING", params=params)
            self.ledger.in_flight.add(tid)

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict[str, Any], **info: Any
    ) -> None:
        if result.get("done"):
            self.stopped[trial.trial_id] = dict(result)
        if FAILED_KEY not in result:
            self.metrics[trial.trial_id] = self._user_metrics(result)

    def on_trial_recover(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.recoveries[trial.trial_id] = self.recoveries.get(trial.trial_id, 0) + 1

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        stopped = self.stopped.pop(trial.trial_id, None)
        if stopped is not None and FAILED_KEY in stopped:
            self._end(trial, "FAILED", str(stopped[FAILED_KEY]))
            return
        if stopped is not None:  # Ray stopped it at a result: a rule, max_t or the scheduler
            state = stopped_state(self.plan, stopped)
        elif (trial.last_result or {}).get("done"):
            state = "COMPLETE"  # the objective returned
        else:  # the scheduler ended it while paused or pending (HyperBand)
            state = stopped_state(self.plan, trial.last_result or {})
        # (trials cut off by the end of the sweep, time budget or target, never get here:
        # they stay unfinished, and a later run with a larger budget resumes them)
        self._end(trial, state, None)

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.stopped.pop(trial.trial_id, None)
        self._end(trial, "FAILED", _trial_error(trial))

    def setup(self, **info: Any) -> None:  # type: ignore[override]
        """Notice Ctrl-C: Ray's own SIGINT handler (installed just before this) stops the
        experiment gracefully and returns from ``fit()`` as if it had ended."""
        self.interrupted = False
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):
            return

        def handler(signum: int, frame: Any) -> None:
            self.interrupted = True
            previous(signum, frame)

        signal.signal(signal.SIGINT, handler)

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if self.progress is None or time.monotonic() - self.last_update < 0.25:
            return
        self.last_update = time.monotonic()
        running = sum(1 for t in trials if t.status == "RUNNING")
        self.progress.update(self.ledger, self.elapsed(), running)

    def elapsed(self) -> float:
        return self.elapsed_before + time.monotonic() - self.started_at


def _trial_error(trial: Any) -> str:
    """The short message of a trial's last error (our TrialFailed, or Ray's own)."""
    path = getattr(trial, "pickled_error_file", None)
    if path and os.path.exists(path):
        try:
            from ray import cloudpickle

            with open(path, "rb") as fh:
                exc = cloudpickle.load(fh)
            cause = getattr(exc, "cause", None)
            if isinstance(cause, TrialFailed):
                return cause.message
            if cause is not None:
                return f"{type(cause).__name__}: {cause}"[:500]
            return str(exc).strip().splitlines()[-1][:500]
        except Exception:  # a damaged or foreign pickle: fall back to the text file
            pass
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        lines = [x for x in Path(path).read_text(errors="replace").splitlines() if x.strip()]
        if lines:
            return lines[-1][:500]
    return "the trial failed (no error message recorded)"
