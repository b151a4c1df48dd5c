"""Journal check/repair: torn tails and glued lines no longer brick an Optuna study."""

from __future__ import annotations

import errno
import json
import logging
import os
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("optuna")

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

from sweepspec.backends.optuna_backend.journal import (
    JournalRepair,
    check_journal,
    open_journal_storage,
    repair_journal,
)
from sweepspec.errors import SweepspecError

N_TRIALS = 4
STUDY = "s"


def _objective(trial: optuna.Trial) -> float:
    return float(trial.suggest_float("x", 0.0, 1.0))


def _complete(study: optuna.Study) -> int:
    return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))


@pytest.fixture(autouse=True)
def _quiet_optuna() -> None:
    optuna.logging.set_verbosity(optuna.logging.WARNING)


@pytest.fixture(scope="module")
def intact(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a real journal: one study, N_TRIALS complete trials."""
    path = tmp_path_factory.mktemp("journal") / "j.log"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(path)))
    study = optuna.create_study(study_name=STUDY, storage=storage)
    study.optimize(_objective, n_trials=N_TRIALS)
    return path.read_bytes()


def _backups(path: Path) -> list[Path]:
    return sorted(path.parent.glob(path.name + ".corrupt-*"))


def _reload_and_run(path: Path) -> optuna.Study:
    study = optuna.load_study(study_name=STUDY, storage=open_journal_storage(path))
    before = _complete(study)
    study.optimize(_objective, n_trials=2)
    assert _complete(study) == before + 2
    return study


def test_intact_journal_is_left_alone(tmp_path: Path, intact: bytes) -> None:
    path = tmp_path / "j.log"
    path.write_bytes(intact)
    assert check_journal(path) is None
    assert repair_journal(path) is None
    assert path.read_bytes() == intact
    assert _backups(path) == []


def test_missing_and_empty_journals_are_intact(tmp_path: Path) -> None:
    missing = tmp_path / "nope" / "j.log"
    assert check_journal(missing) is None
    assert repair_journal(missing) is None
    assert not missing.exists()
    empty = tmp_path / "empty.log"
    empty.touch()
    assert check_journal(empty) is None
    assert repair_journal(empty) is None


def test_every_torn_tail_is_repaired(tmp_path: Path, intact: bytes) -> None:
    start = intact.rstrip(b"\n").rfind(b"\n") + 1  # where the last record begins
    assert 0 < start < len(intact) - 1
    for k in range(start + 1, len(intact)):
        case = tmp_path / str(k)
        case.mkdir()
        path = case / "j.log"
        damaged = intact[:k]
        path.write_bytes(damaged)

        expected = JournalRepair(path, None, k - start, 1, intact.count(b"\n") - 1)
        assert check_journal(path) == expected
        assert path.read_bytes() == damaged  # checking changes nothing

        repair = repair_journal(path)
        assert repair is not None
        assert repair.backup is not None
        assert repair == JournalRepair(path, repair.backup, k - start, 1, expected.kept_records)
        assert path.read_bytes() == intact[:start]
        assert _backups(path) == [repair.backup]
        assert repair.backup.read_bytes() == damaged
        assert not Path(str(path) + ".lock").exists()

        study = optuna.load_study(study_name=STUDY, storage=open_journal_storage(path))
        assert N_TRIALS - 1 <= _complete(study) <= N_TRIALS
        study.optimize(_objective, n_trials=2)
        assert check_journal(path) is None


def _trials(path: Path) -> list[tuple[int, str, Any]]:
    study = optuna.load_study(study_name=STUDY, storage=open_journal_storage(path))
    return [(t.number, t.state.name, t.params.get("x")) for t in study.get_trials()]


def test_a_glued_line_keeps_the_complete_record(tmp_path: Path, intact: bytes) -> None:
    lines = intact.splitlines(keepends=True)
    good, last = b"".join(lines[:-2]), lines[-2:]
    glued = last[0][:20] + last[0]  # a torn record, then a complete one on the same line
    path = tmp_path / "j.log"
    path.write_bytes(good + glued + last[1])

    repair = repair_journal(path)
    assert repair is not None
    assert (repair.kept_records, repair.dropped_records, repair.dropped_bytes) == (
        len(lines),
        1,
        20,
    )
    assert [json.loads(x) for x in path.read_bytes().splitlines()] == [json.loads(x) for x in lines]
    _reload_and_run(path)


@pytest.mark.parametrize(
    "bad_line",
    [b"\n", b"[1, 2]\n", b"42\n", b'{"op_code": \xff\xfe}\n', b"garbage\n", b'{"op_code":4'],
    ids=["empty", "list", "number", "not-utf8", "garbage", "torn"],
)
def test_a_bad_line_in_the_middle_loses_no_record_after_it(
    tmp_path: Path, intact: bytes, bad_line: bytes
) -> None:
    """One garbage line in the middle: every finished trial, the ones after it too, is kept."""
    original = tmp_path / "original.log"
    original.write_bytes(intact)
    lines = intact.splitlines(keepends=True)
    path = tmp_path / "j.log"
    path.write_bytes(b"".join(lines[:3]) + bad_line + b"".join(lines[3:]))
    repair = repair_journal(path)
    assert repair is not None
    assert (repair.kept_records, repair.dropped_records) == (len(lines), 1)
    assert repair.dropped_bytes == len(bad_line)
    assert repair.placeholders == 0
    assert path.read_bytes() == intact
    assert _trials(path) == _trials(original)


def test_a_lost_trial_record_keeps_the_numbers_of_the_others(tmp_path: Path, intact: bytes) -> None:
    """Optuna numbers trials by their creating records: when one of those is damaged, an
    empty trial stands in for it, and the records after it fill it and the others in."""
    original = tmp_path / "original.log"
    original.write_bytes(intact)
    lines = intact.splitlines(keepends=True)
    creates = [i for i, x in enumerate(lines) if json.loads(x)["op_code"] == 4]
    lost = creates[1]  # the second trial's creating record
    path = tmp_path / "j.log"
    path.write_bytes(b"".join(lines[:lost]) + b"\x00garbage\n" + b"".join(lines[lost + 1 :]))
    repair = repair_journal(path)
    assert repair is not None and repair.placeholders == 1
    before, after = _trials(original), _trials(path)
    assert [(n, state) for n, state, _ in after] == [(n, state) for n, state, _ in before]
    assert [x for _, _, x in after] == [x for _, _, x in before]  # params came after it
    _reload_and_run(path)


def test_the_brick_repro_is_healed(
    tmp_path: Path, intact: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    """The reported repro: a torn tail, then an append through plain Optuna."""
    path = tmp_path / "j.log"
    path.write_bytes(intact)
    torn = b'{"op_code":4,"worker_id":"dead","study_id":0,"datetime_start":"2026'
    with path.open("ab") as f:
        f.write(torn)

    # Through open_journal_storage, the second load repairs first and just works.
    with caplog.at_level(logging.WARNING, logger="sweepspec.backends.optuna_backend.journal"):
        _reload_and_run(path)
    assert "repaired the damaged journal" in caplog.text
    assert str(path) in caplog.text
    (backup,) = _backups(path)
    assert backup.read_bytes() == intact + torn


def test_a_study_bricked_by_plain_optuna_is_healed(tmp_path: Path, intact: bytes) -> None:
    """Plain Optuna glues an append onto the torn record; the repair keeps that record."""
    path = tmp_path / "j.log"
    path.write_bytes(intact + b'{"op_code":4,"worker_id":"dead","study_id":0,"datetime_start"')
    plain = optuna.load_study(
        study_name=STUDY, storage=JournalStorage(JournalFileBackend(str(path)))
    )
    with pytest.raises((AttributeError, ValueError)):  # Optuna's internal failure
        plain.optimize(_objective, n_trials=1)
    damage = check_journal(path)
    assert damage is not None
    # the record plain Optuna glued onto the torn one is salvaged
    assert (damage.kept_records, damage.dropped_records) == (intact.count(b"\n") + 1, 1)

    study = _reload_and_run(path)
    assert _complete(study) == N_TRIALS + 2
    records = [json.loads(line) for line in path.read_bytes().splitlines()]
    assert all(isinstance(r, dict) for r in records)


def test_a_directory_in_place_of_the_journal_is_a_user_error(tmp_path: Path) -> None:
    path = tmp_path / "j.log"
    path.mkdir()
    for call in (check_journal, repair_journal, open_journal_storage):
        with pytest.raises(SweepspecError, match="directory") as info:
            call(path)
        assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "no space left"),
        (errno.EROFS, "read-only"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_a_failed_backup_is_a_user_error_and_changes_nothing(
    tmp_path: Path, intact: bytes, monkeypatch: pytest.MonkeyPatch, code: int, reason: str
) -> None:
    path = tmp_path / "j.log"
    path.write_bytes(intact[:-5])

    def fail(*_: object) -> None:
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr("sweepspec.backends.optuna_backend.journal.shutil.copyfileobj", fail)
    with pytest.raises(SweepspecError, match=reason) as info:
        repair_journal(path)
    assert str(path) in str(info.value)
    assert path.read_bytes() == intact[:-5]
    assert _backups(path) == []  # the partial backup is removed
    assert not Path(str(path) + ".lock").exists()
