"""``searcher: hyperopt``: hyperopt's TPE as an Optuna sampler, driven ask/tell (both backends).

For each new trial, the finished trials are handed to ``hyperopt.tpe.suggest`` as a hyperopt
``Trials`` history and one new point is drawn jointly over the parameters that every finished
trial has (parameters outside that set, e.g. conditional ones, are drawn at random).
Maximised metrics are negated: hyperopt minimises ``loss``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.samplers import BaseSampler, RandomSampler
from optuna.search_space import IntersectionSearchSpace
from optuna.study import Study, StudyDirection
from optuna.trial import FrozenTrial, TrialState

__all__ = ["HyperoptSampler"]


def _hp(name: str, dist: BaseDistribution) -> Any:
    from hyperopt import hp

    if isinstance(dist, CategoricalDistribution):
        return hp.choice(name, list(range(len(dist.choices))))
    if isinstance(dist, IntDistribution):
        if dist.log:
            return hp.qloguniform(name, math.log(dist.low), math.log(dist.high), 1)
        return hp.quniform(name, dist.low - 0.4999, dist.high + 0.4999, 1)
    assert isinstance(dist, FloatDistribution)
    if dist.log:
        return hp.loguniform(name, math.log(dist.low), math.log(dist.high))
    return hp.uniform(name, dist.low, dist.high)


def _to_hyperopt(dist: BaseDistribution, value: Any) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices.index(value)
    return value


def _from_hyperopt(dist: BaseDistribution, value: Any) -> Any:
    if isinstance(dist, CategoricalDistribution):
        return dist.choices[int(value)]
    if isinstance(dist, IntDistribution):
        step = dist.step
        snapped = dist.low + round((float(value) - dist.low) / step) * step
        return int(min(dist.high, max(dist.low, snapped)))
    assert isinstance(dist, FloatDistribution)
    v = float(min(dist.high, max(dist.low, float(value))))
    if dist.step:
        v = dist.low + round((v - dist.low) / dist.step) * dist.step
    return v


class HyperoptSampler(BaseSampler):
    """hyperopt TPE as an Optuna sampler (single objective)."""

    def __init__(
        self,
        seed: int | None = None,
        n_startup_jobs: int = 20,
        gamma: float = 0.25,
        n_EI_candidates: int = 24,
        prior_weight: float = 1.0,
    ) -> None:
        self._rng = np.random.default_rng(seed)
        self._random = RandomSampler(seed=seed)
        self._space = IntersectionSearchSpace()
        self._kwargs = {
            "n_startup_jobs": n_startup_jobs,
            "gamma": gamma,
            "n_EI_candidates": n_EI_candidates,
            "prior_weight": prior_weight,
        }

    def reseed_rng(self) -> None:
        self._rng = np.random.default_rng()
        self._random.reseed_rng()

    def infer_relative_search_space(
        self, study: Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        return {k: v for k, v in self._space.calculate(study).items() if not v.single()}

    def sample_relative(
        self, study: Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        done = [
            t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and all(k in t.params for k in search_space)
        ]
        if len(done) < self._kwargs["n_startup_jobs"]:
            return {}  # hyperopt would draw at random anyway: let sample_independent do it
        return self._suggest(study, search_space, done)

    def _suggest(
        self, study: Study, space: dict[str, BaseDistribution], done: list[FrozenTrial]
    ) -> dict[str, Any]:
        from hyperopt import STATUS_OK, Domain, Trials, tpe

        sign = -1.0 if study.direction == StudyDirection.MAXIMIZE else 1.0
        domain = Domain(lambda _: 0.0, {k: _hp(k, d) for k, d in space.items()})
        trials = Trials()
        for tid, t in enumerate(done):
            misc = {
                "tid": tid,
                "cmd": ("domain_attachment", "FMinIter_Domain"),
                "idxs": {k: [tid] for k in space},
                "vals": {k: [_to_hyperopt(d, t.params[k])] for k, d in space.items()},
            }
            docs = trials.new_trial_docs(
                [tid], [None], [{"loss": sign * float(t.value or 0.0), "status": STATUS_OK}], [misc]
            )
            for doc in docs:
                doc["state"] = 2  # JOB_STATE_DONE
            trials.insert_trial_docs(docs)
        trials.refresh()
        new_id = len(done)
        seed = int(self._rng.integers(2**31 - 1))
        new = tpe.suggest([new_id], domain, trials, seed, **self._kwargs)
        vals = new[0]["misc"]["vals"]
        return {k: _from_hyperopt(d, vals[k][0]) for k, d in space.items() if vals.get(k)}

    def sample_independent(
        self,
        study: Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        return self._random.sample_independent(study, trial, param_name, param_distribution)


_ = optuna
