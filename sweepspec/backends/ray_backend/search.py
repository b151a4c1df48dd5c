"""The Ray backend's searcher: Ray's ``OptunaSearch`` over the spec's define-by-run space with
the sampler every backend builds, asking through the shared feasible ask
(:class:`sweepspec.search.asker.FeasibleAsker`: constraints, grid points), and
``SpecSearchGenerator``, which keeps this session's budget and concurrency across a restore.
Driver side only: imports Ray Tune and Optuna."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import optuna
from ray.tune.search import ConcurrencyLimiter, SearchGenerator
from ray.tune.search.optuna import OptunaSearch

from sweepspec.backends.ray_backend.compile import RayPlan
from sweepspec.backends.ray_backend.stopper import stopped_state
from sweepspec.backends.ray_backend.trainable import FAILED_KEY
from sweepspec.records import is_finite_number
from sweepspec.run.crash import crash_point
from sweepspec.search.asker import FeasibleAsker
from sweepspec.search.grid import GridCounter
from sweepspec.search.params import encode_params, sample_params
from sweepspec.search.samplers import build_sampler
from sweepspec.search.warm_start import add_finished

__all__ = ["SpecSearch", "SpecSearchGenerator", "SpecSpace"]


class SpecSpace:
    """The define-by-run space for ``OptunaSearch``: a picklable instance (Ray saves the
    searcher with plain pickle, so a closure would break the first experiment snapshot).

    Calling it suggests every active parameter and returns the sampled values (choices
    decoded) plus the active fixed values, as flat dotted paths."""

    def __init__(self, plan: RayPlan) -> None:
        self.plan = plan

    def __call__(self, trial: optuna.Trial) -> dict[str, Any]:
        values = sample_params(self.plan.space, self.plan.search.suggest, trial)
        return {**self.plan.space.fixed_values(values), **values}


class SpecSearch(OptunaSearch):
    """``OptunaSearch`` over :class:`SpecSpace` with the Optuna backend's sampler.

    On top of Ray's adapter: configs are asked through the shared feasible ask (constraints,
    grid points), results without a finite metric never reach the sampler, and a trial that
    the scheduler stopped early is told as PRUNED (Ray's adapter would tell its partial value
    as COMPLETE).
    """

    def __init__(self, plan: RayPlan, seed: int | None) -> None:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self._plan = plan
        self._spec_space = SpecSpace(plan)
        self._grid = GridCounter(plan.search.grid_points)
        self._seen_iteration: dict[str, int] = {}
        self._reported_step: dict[str, int] = {}
        #: params key -> Ray trial ids of adopted trials not replayed yet (see :meth:`adopt`)
        self._replays: dict[str, list[str]] = {}
        points = [dict(p) for p in plan.search.try_first]
        super().__init__(
            space=self._spec_space,
            metric=plan.metric,
            mode=plan.mode,
            points_to_evaluate=points or None,
            sampler=build_sampler(plan.search, seed),
            study_name=plan.study_name,
        )

    @property
    def study(self) -> optuna.Study:
        study: optuna.Study = self.__dict__["_ot_study"]
        return study

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        asker = FeasibleAsker(self._plan.search, self.study)
        while True:
            asked = asker.ask(self._grid)
            if not self._is_replay(asked.trial, asked.values):
                break
        self._ot_trials[trial_id] = asked.trial
        self._grid.add(asked.values)
        crash_point("after_ask")
        return asked.flat

    def _is_replay(self, ot_trial: optuna.Trial, values: Mapping[str, Any]) -> bool:
        """After a resume, a restored sampler proposes again what it proposed after Ray's
        last snapshot (a seeded random or QMC sequence, a try_first or grid point). A config
        equal to one of those trials, which had ended and were adopted, is not run twice: the
        proposal is told as FAIL (samplers skip it) and the searcher asks again."""
        waiting = self._replays.get(_params_key(values))
        if not waiting:
            return False
        ot_trial.set_user_attr("replay_of", waiting.pop(0))
        self.study.tell(ot_trial, state=optuna.trial.TrialState.FAIL)
        return True

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
        """``--warm-start``: old (encoded params, values) that fit the space, told before any
        trial."""
        return sum(
            add_finished(self.study, self._plan.search, params, values, "COMPLETE", {"warm": True})
            for params, values in trials
        )

    def adopt(self, ends: Iterable[Mapping[str, Any]]) -> int:
        """On resume: tell the sampler the trials that ended (``ledger.jsonl`` end events)
        after Ray's last snapshot, which the restored searcher has never seen, and note their
        configs so that a replayed proposal of one is not run again. Idempotent: a trial
        adopted by an earlier session (and saved in a later snapshot) is skipped."""
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
            encoded = encode_params(self._plan.search.suggest, params)
            add_finished(self.study, self._plan.search, encoded, values, state, {"ray_id": ray_id})
            self._grid.add(params)
            self._replays.setdefault(_params_key(params), []).append(ray_id)
            adopted += 1
        return adopted


def _params_key(params: Mapping[str, Any]) -> str:
    return json.dumps(dict(params), sort_keys=True, default=str)


class SpecSearchGenerator(SearchGenerator):
    """Ray's ``SearchGenerator`` around ``ConcurrencyLimiter(SpecSearch)`` whose trial budget,
    concurrency and time budget are this session's: on ``Tuner.restore`` Ray would bring back
    the first session's ``num_samples`` (and its concurrency, and ``num_samples=1`` when it
    restarts an experiment whose state was never saved). A spec may raise or lower them on
    resume.

    The whole-sweep stops (``time_budget``, ``target``, ``max_failed``) stop *launching*, as on
    the Optuna backend: no new trial starts, and the trials that are running run to their end
    (Ray's own ``time_budget_s`` and ``stop_all`` would cut them off, unfinished)."""

    def __init__(
        self,
        searcher: SpecSearch,
        num_samples: int,
        concurrency: int | None,
        deadline: float | None = None,
    ) -> None:
        inner = searcher if not concurrency else ConcurrencyLimiter(searcher, concurrency)
        super().__init__(inner)
        self.override(num_samples, concurrency, deadline)

    def override(self, num_samples: int, concurrency: int | None, deadline: float | None) -> None:
        """This session's budget: ``deadline`` is a ``time.time()`` reading past which no
        trial is launched (None: no time budget)."""
        self._sweepspec_total = num_samples
        self._sweepspec_concurrency = concurrency
        self._sweepspec_deadline = deadline
        self._sweepspec_stop: str | None = None
        self._apply()

    def _apply(self) -> None:
        total = getattr(self, "_sweepspec_total", None)
        if total is not None:
            self._total_samples = total
        concurrency = getattr(self, "_sweepspec_concurrency", None)
        if concurrency and isinstance(self.searcher, ConcurrencyLimiter):
            self.searcher.max_concurrent = concurrency

    def stop_launching(self, reason: str) -> None:
        """Launch no more trials (the first reason given is kept)."""
        if self._sweepspec_stop is None:
            self._sweepspec_stop = reason

    @property
    def stopped(self) -> str | None:
        """Why no more trials are launched in this session (None: they still are)."""
        deadline = self._sweepspec_deadline
        if self._sweepspec_stop is None and deadline is not None and time.time() >= deadline:
            self._sweepspec_stop = "time_budget"
        return self._sweepspec_stop

    def is_finished(self) -> bool:
        return bool(super().is_finished() or self.stopped)

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
        if self.stopped:
            return None
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
