"""The Optuna storage of a run and its study, opened the same way by ``run``, ``worker``,
``status``, ``results`` and ``--warm-start``: the journal file (repaired first when a crash
left it damaged) or a database URL (``${oc.env:...}`` resolved, the installed PostgreSQL
driver named), and the study checked against the spec it was created from."""

from __future__ import annotations

import importlib.util
import re
import warnings
from typing import TYPE_CHECKING, Any

from sweepspec.backends.optuna_backend.compile import OptunaPlan
from sweepspec.credentials import mask_url, resolve_env, scrub
from sweepspec.errors import Problem, SweepspecError
from sweepspec.run.rundir import RunDir, changed_sections, fingerprint
from sweepspec.run.session import changed_spec_error
from sweepspec.search.samplers import build_sampler
from sweepspec.spec.read import LoadedSpec
from sweepspec.spec.root import Spec

if TYPE_CHECKING:
    import optuna
    from optuna.storages import BaseStorage

__all__ = ["FP_ATTR", "load_study", "open_storage", "open_study", "sqlalchemy_url"]

FP_ATTR = "sweepspec:fingerprint"
SESSIONS_ATTR = "sweepspec:sessions"  # processes that opened the study so far (run or worker)


def sqlalchemy_url(url: str) -> str:
    """Name the installed driver: SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3,
    while sweepspec[postgres] installs psycopg2."""
    if re.match(r"postgres(ql)?://", url) and importlib.util.find_spec("psycopg") is None:
        return re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", url)
    return url


def open_storage(spec: Spec, rundir: RunDir) -> BaseStorage:
    """The run's storage: its journal file, or the spec's database."""
    if not spec.storage_is_url:
        from sweepspec.backends.optuna_backend.journal import open_journal_storage

        return open_journal_storage(rundir.journal)
    import optuna

    url = sqlalchemy_url(resolve_env(spec.storage))
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["engine_kwargs"] = {"connect_args": {"timeout": 60}}
    else:
        kwargs["engine_kwargs"] = {"pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(url, **kwargs)
    except Exception as exc:  # sqlalchemy raises many kinds for a bad URL or server
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise SweepspecError(
            Problem(
                f"cannot open the storage {mask_url(spec.storage)}: {scrub(first)[:300]}",
                "storage",
                code="storage",
            )
        ) from None


def load_study(loaded: LoadedSpec, rundir: RunDir, study_name: str) -> optuna.Study:
    """The run's study, to read (``status``, ``results``, an old run for ``--warm-start``)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(loaded.spec, rundir)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        raise SweepspecError(
            Problem(
                f"the storage holds no sweep {study_name!r} (the run in {rundir.path} "
                "names it): was the storage emptied or changed?",
                "storage",
                code="no-study",
            )
        ) from None


def open_study(
    loaded: LoadedSpec, rundir: RunDir, plan: OptunaPlan, *, create: bool
) -> optuna.Study:
    """Create (once) or load the study to run; refuse one made from a different spec. Call it
    under the create gate: each process that opens the study gets its own session number."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(loaded.spec, rundir)
    fp = fingerprint(loaded)
    n_existing = 0
    try:
        study = optuna.load_study(study_name=plan.study_name, storage=storage)
        n_existing = len(study.get_trials(deepcopy=False))
    except KeyError:
        if not create:
            raise SweepspecError(
                Problem(
                    f"no sweep {plan.study_name!r} in the storage yet; "
                    "start it with `sweepspec run` first",
                    code="no-study",
                )
            ) from None
        study = optuna.create_study(
            study_name=plan.study_name, storage=storage, directions=plan.search.directions
        )
        study.set_user_attr(FP_ATTR, fp)
    old = study.user_attrs.get(FP_ATTR)
    if old and old != fp:
        raise changed_spec_error(changed_sections(old, fp))
    if [d.name.lower() for d in study.directions] != plan.search.directions:
        raise changed_spec_error(["objective"])
    if study.metric_names != plan.search.metric_names:  # once: a dashboard shows them by name
        with warnings.catch_warnings():  # set_metric_names is "experimental" in Optuna 5
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(plan.search.metric_names)
    session = int(study.user_attrs.get(SESSIONS_ATTR, 0))
    study.set_user_attr(SESSIONS_ATTR, session + 1)
    seed = plan.search.seed
    if seed is not None and plan.search.sampler not in ("QMCSampler", "GridSampler"):
        # never replay the startup points of an earlier session, nor those of a worker that
        # opened the study at the same count (same seed: the same points, duplicated trials)
        seed = seed + n_existing + 100_003 * session
    study.sampler = build_sampler(plan.search, seed)
    study.pruner = getattr(optuna.pruners, plan.pruner)(**plan.pruner_kwargs)
    return study
