"""Backends: where and how trials run. One package per backend, each behind the small
:class:`Backend` interface, found by the spec's ``backend.type`` in :data:`REGISTRY` and
imported only when a command needs it (a backend's package ``__init__`` is light: its checks
import nothing heavy; its compile step, runner and libraries load when used).

Commands never ask which backend they hold: they call :func:`backend_for` (the spec's) or
:func:`read_ledger` (the run's own, as recorded in its ``meta.json``). A third backend is one
new package here and one line in :data:`REGISTRY` (plus its ``backend:`` section in the spec
models, which is part of the spec language).
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from sweepspec.errors import Finding, Problem, SweepspecError
from sweepspec.records import TrialRecord
from sweepspec.run.ledger import Ledger, records_in_order
from sweepspec.run.rundir import RunDir, spec_changes
from sweepspec.run.session import ProgressSink, RunOptions, RunOutcome
from sweepspec.run.view import RunView, read_as_ran, read_summary
from sweepspec.spec.read import LoadedSpec
from sweepspec.spec.root import Spec

__all__ = [
    "REGISTRY",
    "Backend",
    "backend_for",
    "backend_named",
    "open_run",
    "read_ledger",
    "read_old_run",
    "read_run",
]

#: ``backend.type`` -> the package that implements it (its module attribute ``BACKEND``).
REGISTRY: dict[str, str] = {
    "optuna": "sweepspec.backends.optuna_backend",
    "ray": "sweepspec.backends.ray_backend",
}


class Backend(Protocol):
    """What every backend does for the commands."""

    name: str

    def check(self, spec: Spec) -> list[Finding]:
        """What this backend cannot do with ``spec`` (validate-time errors). Light: imports
        no library and runs nothing."""
        ...

    def describe(self, loaded: LoadedSpec) -> list[str]:
        """What the spec compiles to here, for ``sweepspec plan`` (runs nothing)."""
        ...

    def run(
        self, loaded: LoadedSpec, options: RunOptions, progress: ProgressSink | None
    ) -> RunOutcome:
        """Run or resume the sweep until its budget is used or it is stopped."""
        ...

    def read_ledger(self, loaded: LoadedSpec, rundir: RunDir, meta: Mapping[str, Any]) -> Ledger:
        """The trials of a run of this backend so far (changes nothing the run needs)."""
        ...

    def optuna_storage(self, loaded: LoadedSpec, rundir: RunDir) -> object | None:
        """The run's Optuna storage, for ``sweepspec dashboard``; None for a backend that
        keeps none."""
        ...


def backend_named(name: str) -> Backend:
    """The backend registered as ``name``."""
    try:
        package = REGISTRY[name]
    except KeyError:
        raise SweepspecError(
            Problem(f"unknown backend {name!r}; known: {', '.join(REGISTRY)}", "backend.type")
        ) from None
    backend: Backend = importlib.import_module(package).BACKEND
    return backend


def backend_for(spec: Spec) -> Backend:
    """The backend a spec names."""
    return backend_named(spec.backend.type)


def read_ledger(loaded: LoadedSpec, rundir: RunDir, meta: Mapping[str, Any]) -> Ledger:
    """The trials of the run in ``rundir``, read by the backend that made it."""
    return backend_named(str(meta.get("backend", loaded.spec.backend.type))).read_ledger(
        loaded, rundir, meta
    )


def read_old_run(loaded: LoadedSpec, path: Path) -> list[TrialRecord]:
    """The trials of an old run kept aside (``--warm-start``), read by the backend that made
    it; empty when it cannot be read (a warm start is a hint, never a reason to fail)."""
    old = RunDir(path)
    try:
        meta = old.read_meta()
        ledger = read_ledger(loaded, old, meta)
    except SweepspecError as exc:
        print(f"warm start: cannot read the old run ({exc}); starting cold", flush=True)
        return []
    return list(records_in_order(ledger))


def read_run(loaded: LoadedSpec) -> tuple[RunDir, Ledger, dict[str, Any]]:
    """(run directory, ledger, meta) of the spec's run, read through ``loaded`` itself; an
    error if it never ran (``status`` and ``results`` use :func:`open_run`)."""
    rundir = RunDir.for_spec(loaded)
    if not rundir.exists():
        raise _no_run(loaded, rundir)
    meta = rundir.read_meta()
    return rundir, read_ledger(loaded, rundir, meta), meta


def open_run(loaded: LoadedSpec) -> RunView:
    """The run of ``loaded`` for ``status`` and ``results``, read through the spec it ran (its
    frozen one when the spec changed since, :mod:`sweepspec.run.view`); an error if it never
    ran."""
    rundir = RunDir.for_spec(loaded)
    if not rundir.exists():
        raise _no_run(loaded, rundir)
    meta = rundir.read_meta()
    changed = spec_changes(loaded, meta)
    as_ran = read_as_ran(loaded, rundir) if changed else loaded
    ledger = read_ledger(as_ran, rundir, meta)
    return RunView(rundir, meta, ledger, as_ran, changed, read_summary(rundir))


def _no_run(loaded: LoadedSpec, rundir: RunDir) -> SweepspecError:
    return SweepspecError(
        Problem(
            f"no run of {loaded.spec.run_name!r} yet (looked in "
            f"{rundir.path}); start it with `sweepspec run`",
            code="no-run",
        )
    )
