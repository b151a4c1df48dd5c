"""Finished trials told to a sampler without being run: ``--warm-start`` (the old run's
COMPLETE trials whose params fit the new space) and, on the Ray backend, trials that ended
after Ray's last snapshot. Copied trials never count toward the trial budget."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sweepspec.records import TrialRecord, is_finite_number
from sweepspec.search.params import SuggestSpec, encode_params
from sweepspec.search.plan import SearchPlan
from sweepspec.search.score import SCORE

if TYPE_CHECKING:
    import optuna
    from optuna.distributions import BaseDistribution

__all__ = ["add_finished", "distribution", "fitting", "warm_trials"]


def distribution(s: SuggestSpec) -> BaseDistribution:
    """The Optuna distribution that ``s`` suggests from."""
    import optuna.distributions as d

    if s.method == "float":
        return d.FloatDistribution(
            s.kwargs["low"],
            s.kwargs["high"],
            log=s.kwargs.get("log", False),
            step=s.kwargs.get("step"),
        )
    if s.method == "int":
        return d.IntDistribution(
            s.kwargs["low"],
            s.kwargs["high"],
            log=s.kwargs.get("log", False),
            step=s.kwargs.get("step", 1),
        )
    return d.CategoricalDistribution(s.kwargs["choices"])


def fitting(
    suggest: Mapping[str, SuggestSpec], params: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, BaseDistribution]] | None:
    """``(params, distributions)`` of the space's parameters among ``params`` (encoded
    values), for ``optuna.trial.create_trial``; None if a value is outside its distribution
    or none is a parameter of the space."""
    kept: dict[str, Any] = {}
    dists: dict[str, BaseDistribution] = {}
    for name, value in params.items():
        s = suggest.get(name)
        if s is None:
            continue
        dist = distribution(s)
        try:
            fits = dist._contains(dist.to_internal_repr(value))
        except (ValueError, TypeError):
            fits = False
        if not fits:
            return None
        kept[name], dists[name] = value, dist
    return (kept, dists) if kept else None


def add_finished(
    study: optuna.Study,
    plan: SearchPlan,
    params: Mapping[str, Any],
    values: Sequence[Any],
    state: str,
    attrs: Mapping[str, Any],
) -> bool:
    """Add a finished trial (encoded ``params``; ``state`` COMPLETE, PRUNED or FAILED) to
    ``study``; False when its params do not fit the space, or it is COMPLETE without a finite
    value for each objective."""
    import optuna

    if state == "COMPLETE" and (
        len(values) != len(plan.directions) or not all(is_finite_number(v) for v in values)
    ):
        return False
    fit = fitting(plan.suggest, params)
    if fit is None:
        return False
    kept, dists = fit
    trial_state = optuna.trial.TrialState[
        {"COMPLETE": "COMPLETE", "PRUNED": "PRUNED"}.get(state, "FAIL")
    ]
    study.add_trial(
        optuna.trial.create_trial(
            params=kept,
            distributions=dists,
            values=[float(v) for v in values] if trial_state.name == "COMPLETE" else None,
            state=trial_state,
            user_attrs=dict(attrs),
        )
    )
    return True


def warm_trials(
    plan: SearchPlan, records: Iterable[TrialRecord]
) -> list[tuple[dict[str, Any], list[float]]]:
    """(encoded params, values) of the COMPLETE records with a finite value per objective.
    With a score, an old trial's score is computed afresh from its metrics (the formula may
    have changed since; a trial without them is left out)."""
    out = []
    for r in records:
        metrics: Mapping[str, Any] = r.metrics
        if plan.score is not None:
            metrics = plan.scored({k: v for k, v in r.metrics.items() if k != SCORE})
        values = [v for v in (metrics.get(n) for n in plan.metric_names) if is_finite_number(v)]
        if r.state == "COMPLETE" and len(values) == len(plan.metric_names):
            out.append((encode_params(plan.suggest, r.params), [float(v) for v in values]))
    return out
