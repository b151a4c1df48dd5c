"""The feasible ask: the next config from an Optuna study that keeps every constraint.

Both backends ask through this (the Optuna backend on its study, the Ray backend on the study
inside Ray's ``OptunaSearch``). A proposal that breaks a constraint is never run: it is told to
the sampler as a poor result (the worst value so far, or FAIL before any trial completed, with
``set_constraint`` so constraint-aware samplers learn the boundary) and the sampler is asked
again, at most ``MAX_REJECTIONS`` times in a row. Rejected proposals carry the user attribute
``rejected`` and never count toward the trial budget. With ``grid`` leaves, the least-run grid
point is enqueued before each ask that finds no trial waiting.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sweepspec.errors import SweepspecError
from sweepspec.search.feasibility import MAX_REJECTIONS, evaluation_problem, too_many_rejections
from sweepspec.search.grid import GridCounter
from sweepspec.search.params import encode_params, sample_params
from sweepspec.search.plan import SearchPlan
from sweepspec.search.samplers import searcher_error
from sweepspec.spec.expr import ExprEvalError

if TYPE_CHECKING:
    import optuna

__all__ = ["Asked", "FeasibleAsker"]


def _fail_state() -> optuna.trial.TrialState:
    import optuna

    return optuna.trial.TrialState.FAIL


REJECTED_ATTR = "rejected"


@dataclass
class Asked:
    """An Optuna trial with the sampled values (decoded) and the active fixed ones."""

    trial: optuna.Trial
    values: dict[str, Any]
    fixed: dict[str, Any]

    @property
    def flat(self) -> dict[str, Any]:
        """Fixed and sampled values by dotted path (what a Ray trial's config holds)."""
        return {**self.fixed, **self.values}


class FeasibleAsker:
    """Asks ``study`` for configs that satisfy the plan's constraints."""

    def __init__(
        self,
        plan: SearchPlan,
        study: optuna.Study,
        worst: Callable[[], list[float] | None] | None = None,
    ) -> None:
        self.plan = plan
        self.study = study
        #: the worst values so far, from a caller that keeps them (a driver's ledger); else
        #: the study's completed trials are read for them at each rejection
        self._worst = worst

    def ask(self, grid: GridCounter | None = None, *, waiting: bool | None = None) -> Asked:
        """The next feasible trial; ``grid``: how often each grid point has run so far (needed
        when the plan has grid points); ``waiting``: whether the study holds WAITING trials,
        when the caller knows (None: the study is asked, which reads every trial)."""
        if waiting is None:
            waiting = self._waiting()
        if self.plan.grid_points and not waiting:
            point = (grid or GridCounter(self.plan.grid_points)).least()
            self.study.enqueue_trial(
                encode_params(self.plan.suggest, point), user_attrs={"grid": True}
            )
            waiting = True
        space = self.plan.space
        for _ in range(MAX_REJECTIONS):
            trial = self._ask(waiting)
            try:
                values = sample_params(space, self.plan.suggest, trial)
            except SweepspecError:
                raise  # the storage failed (a full disk): not the searcher's fault
            except Exception as exc:  # the sampler failed: no trial is left RUNNING for it
                self.study.tell(trial, state=_fail_state())
                raise searcher_error(self.plan, exc) from None
            try:
                fixed = space.fixed_values(values)
                violated = space.violated({**fixed, **values})
            except ExprEvalError as exc:  # the spec's expression fails at this point: say so
                self.study.tell(trial, state=_fail_state())
                raise SweepspecError(evaluation_problem(exc, values)) from None
            if not violated:
                return Asked(trial, values, fixed)
            self._reject(trial, violated)
        raise too_many_rejections()

    def _ask(self, waiting: bool) -> optuna.Trial:
        """``study.ask()``; a sampler that fails there is the spec's error, with its message
        (the trial Optuna had created for it is told FAIL first). With no WAITING trial, a
        new trial without ``ask``'s search for one: Optuna 5.0 reads every trial of the study
        for it (``Study._pop_waiting_trial_id``), a cost per trial that grows with the run."""
        try:
            return self.study.ask() if waiting else self._new_trial()
        except SweepspecError:
            raise  # the storage failed (a full disk): the next run recovers what it left
        except Exception as exc:
            self._fail_created()
            raise searcher_error(self.plan, exc) from None

    def _new_trial(self) -> optuna.Trial:
        """What ``study.ask()`` does when no trial is WAITING (optuna/study/study.py, 5.0)."""
        import optuna

        study = self.study
        study._thread_local.cached_all_trials = None
        return optuna.Trial(study, study._storage.create_new_trial(study._study_id))

    def _fail_created(self) -> None:
        import optuna

        running = self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
        for t in running:
            if not t.user_attrs and t.number == max(r.number for r in running):
                with contextlib.suppress(Exception):
                    self.study.tell(t.number, state=optuna.trial.TrialState.FAIL)

    def _waiting(self) -> bool:
        import optuna

        waiting = (optuna.trial.TrialState.WAITING,)
        return bool(self.study.get_trials(deepcopy=False, states=waiting))

    def _reject(self, trial: optuna.Trial, violated: Sequence[int]) -> None:
        import optuna

        trial.set_user_attr(REJECTED_ATTR, [int(i) for i in violated])
        trial.set_constraint("sweepspec", float(len(violated)))
        worst = self._worst() if self._worst is not None else self.worst_values()
        if worst is None:
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, worst)

    def worst_values(self) -> list[float] | None:
        """The worst value of each objective among the completed, run trials (None before
        any completed): what a rejected proposal is told."""
        import optuna

        done = [
            t
            for t in self.study.get_trials(
                deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)
            )
            if not t.user_attrs.get(REJECTED_ATTR) and t.values
        ]
        if not done:
            return None
        worst = []
        for i, direction in enumerate(self.plan.directions):
            vals = [t.values[i] for t in done]
            worst.append(min(vals) if direction == "maximize" else max(vals))
        return worst
