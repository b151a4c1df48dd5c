"""``--warm-start``: the new run's searcher first learns from the old run's COMPLETE trials
whose params fit the new space. Copied trials are marked ``warm`` and never count toward
``num_samples``."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from sweepspec.compile.optuna_backend import OptunaPlan, SuggestSpec

__all__ = ["distribution", "fitting", "warm_start_from"]

log = logging.getLogger("sweepspec")


def distribution(s: SuggestSpec) -> Any:
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


def fitting(plan: OptunaPlan, params: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """``(params, distributions)`` of the space's parameters among ``params`` (encoded
    values), for ``optuna.trial.create_trial``; None if a value is outside its distribution
    or none is a parameter of the space."""
    kept: dict[str, Any] = {}
    dists: dict[str, Any] = {}
    for name, value in params.items():
        s = plan.suggest.get(name)
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


def _old_trials(old_dir: Path, loaded: Any) -> list[Any]:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    meta = json.loads((old_dir / "meta.json").read_text(encoding="utf-8"))
    if loaded.spec.storage_is_url:
        from sweepspec.env import resolve_env

        storage: Any = optuna.storages.RDBStorage(resolve_env(loaded.spec.storage))
    else:
        storage = JournalStorage(JournalFileBackend(str(old_dir / "study.journal")))
    study = optuna.load_study(study_name=meta["study_name"], storage=storage)
    return [
        t
        for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        if not t.user_attrs.get("rejected") and not t.user_attrs.get("warm")
    ]


def warm_start_from(old_dir: Path, loaded: Any, plan: OptunaPlan, study: Any) -> int:
    """Copy fitting old trials into ``study``; returns how many were copied."""
    import optuna

    copied = 0
    for t in _old_trials(old_dir, loaded):
        if t.values is None or len(t.values) != len(plan.directions):
            continue
        fit = fitting(plan, t.params)
        if fit is None:
            continue
        params, dists = fit
        study.add_trial(
            optuna.trial.create_trial(
                params=params,
                distributions=dists,
                values=list(t.values),
                user_attrs={"warm": True, "warm_from": t.number},
            )
        )
        copied += 1
    log.warning("warm start: %d trial(s) of the old run fit the new space", copied)
    print(f"warm start: the searcher learns from {copied} trial(s) of the old run", flush=True)
    return copied
