"""sweepspec's journal backend: ``flock`` per append, fsync of trial-ending records in the
background, reads skipped when the file has not grown."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import threading
import time
import warnings
from pathlib import Path

import pytest

pytest.importorskip("optuna")

import optuna
from optuna.trial import TrialState

from sweepspec.backends.optuna_backend import journal
from sweepspec.backends.optuna_backend.journal import (
    check_journal,
    flush_journals,
    journal_version,
    open_journal_storage,
)


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _write_trials(path: str, n: int) -> None:
    study = optuna.load_study(study_name="s", storage=open_journal_storage(Path(path)))
    for _ in range(n):
        trial = study.ask()
        trial.set_user_attr("pid", os.getpid())
        study.tell(trial, trial.suggest_float("x", 0.0, 1.0))
    flush_journals()
    os._exit(0)


def test_concurrent_writers_leave_an_intact_journal(tmp_path: Path) -> None:
    path = tmp_path / "study.journal"
    optuna.create_study(study_name="s", storage=open_journal_storage(path))
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_write_trials, args=(str(path), 25)) for _ in range(3)]
    with warnings.catch_warnings():  # Python 3.12+: fork() while our fsync thread idles
        warnings.simplefilter("ignore", DeprecationWarning)
        for p in procs:
            p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    assert check_journal(path) is None
    study = optuna.load_study(study_name="s", storage=open_journal_storage(path))
    trials = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(trials) == 75 and len({t.number for t in trials}) == 75
    assert not Path(str(path) + ".lock").exists()  # no lock file: the lock is a flock


def test_an_append_waits_for_the_flock(tmp_path: Path) -> None:
    path = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=open_journal_storage(path))
    size = path.stat().st_size
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # what a repair (or another writer) holds
    writer = threading.Thread(target=study.set_user_attr, args=("k", 1))
    writer.start()
    time.sleep(0.3)
    assert path.stat().st_size == size and writer.is_alive()
    os.close(fd)
    writer.join(10)
    assert not writer.is_alive() and path.stat().st_size > size


def test_trial_ends_are_fsynced_in_the_background(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(threading.get_ident())
        real_fsync(fd)

    monkeypatch.setattr(journal.os, "fsync", fsync)
    path = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=open_journal_storage(path))
    trial = study.ask()
    trial.set_user_attr("a", 1)
    study.tell(trial, 1.0)
    flush_journals()
    assert synced and threading.get_ident() not in synced


def test_version_changes_only_with_new_records(tmp_path: Path) -> None:
    path = tmp_path / "study.journal"
    study = optuna.create_study(study_name="s", storage=open_journal_storage(path))
    storage = study._storage
    study.get_trials(deepcopy=False)
    before = journal_version(storage)
    assert isinstance(before, int)
    study.get_trials(deepcopy=False)
    assert journal_version(storage) == before
    other = optuna.load_study(study_name="s", storage=open_journal_storage(path))
    other.set_user_attr("k", 1)  # another writer on the same file
    study.get_trials(deepcopy=False)
    assert journal_version(storage) == before + 1
    assert journal_version(optuna.storages.InMemoryStorage()) is None
