"""The ledger of a study, folded incrementally: the same as folding every trial, at a cost per
call that does not grow with the run (a driver asks for it several times a trial)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweepspec.backends.optuna_backend.journal import trials_from
from sweepspec.backends.optuna_backend.tally import Tally, tally


def _study(tmp_path: Path) -> Any:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    return optuna.create_study(storage=storage, sampler=optuna.samplers.RandomSampler(seed=0))


def _same(a: Any, b: Any) -> None:
    assert {k: (r.state, r.metrics, r.params) for k, r in a.records.items()} == {
        k: (r.state, r.metrics, r.params) for k, r in b.records.items()
    }
    assert (a.in_flight, a.requeued, a.rejected, a.waiting) == (
        b.in_flight,
        b.requeued,
        b.rejected,
        b.waiting,
    )
    assert (a.finished, a.failed, a.records.top) == (b.finished, b.failed, b.records.top)


@pytest.mark.parametrize("trials", [300, 1200])
def test_the_trials_read_per_call_do_not_grow_with_the_run(tmp_path: Path, trials: int) -> None:
    import optuna

    study = _study(tmp_path)
    storage, sid = study._storage, study._study_id
    fold = Tally()
    fetched = 0

    def fetch(start: int) -> list[Any]:
        nonlocal fetched
        out = trials_from(storage, sid, start)
        fetched += len(out)
        return out

    calls = 0
    running: list[Any] = []
    for i in range(trials):  # two trials in flight at a time, one of five a retry
        t = study.ask()
        t.suggest_float("x", 0, 1)
        logical = str(i)
        t.set_user_attr("logical", logical)
        running.append(t)
        if len(running) == 2:
            done = running.pop(0)
            if i % 5 == 0:
                done.set_user_attr("final", True)
                study.tell(done, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(done, done.params["x"])
        for _ in range(3):  # a driver asks several times a trial
            ledger = fold.update(fetch)
            calls += 1
        if i % 97 == 0:
            _same(ledger, tally(study.get_trials(deepcopy=False)))
    _same(fold.update(fetch), tally(study.get_trials(deepcopy=False)))
    # the trials in flight (and the one just finished) each call, whatever the run's size
    assert fetched / calls < 4, (fetched, calls)
    assert fold.folded / calls < 4


def test_a_waiting_trial_and_a_requeue_are_counted(tmp_path: Path) -> None:
    import optuna

    study = _study(tmp_path)
    t = study.ask()
    t.set_user_attr("logical", "0")
    t.set_user_attr("interrupted", True)
    study.enqueue_trial({}, user_attrs={"logical": "0", "attempt": 0, "requeue_of": t.number})
    study.tell(t, state=optuna.trial.TrialState.FAIL)
    fold = Tally()
    ledger = fold.update(lambda s: trials_from(study._storage, study._study_id, s))
    assert ledger.waiting == 1 and ledger.requeued == {0} and ledger.in_flight == {"0"}
    assert ledger.records.top == 0 and ledger.finished == 0


def test_a_paused_trial_is_pruned_until_its_promotion_supersedes_it(tmp_path: Path) -> None:
    import optuna

    study = _study(tmp_path)
    fold = Tally()

    def ledger() -> Any:
        return fold.update(lambda s: trials_from(study._storage, study._study_id, s))

    paused = study.ask()
    paused.set_user_attr("logical", "0")
    paused.set_user_attr("paused", True)
    study.tell(paused, state=optuna.trial.TrialState.PRUNED)
    first = ledger()
    assert first.records["0"].state == "PRUNED" and first.records["0"].paused
    assert first.finished == 1 and not first.in_flight
    study.enqueue_trial({}, user_attrs={"logical": "0", "attempt": 0, "promoted_to": 1})
    queued = ledger()  # promoted: in flight again, the same logical trial, no new slot
    assert queued.records["0"].state == "RUNNING" and not queued.records["0"].paused
    assert queued.finished == 0 and queued.in_flight == {"0"} and queued.records.top == 0
    run = study.ask()
    study.tell(run, 1.5)
    done = ledger()
    assert done.records["0"].state == "COMPLETE" and done.finished == 1 and not done.in_flight
    _same(done, tally(study.get_trials()))  # folded at once, the same
    # an ordinary PRUNED trial is final: a later attempt of it (there should be none) loses
    pruned = study.ask()
    pruned.set_user_attr("logical", "1")
    study.tell(pruned, state=optuna.trial.TrialState.PRUNED)
    study.enqueue_trial({}, user_attrs={"logical": "1", "attempt": 0})
    assert ledger().records["1"].state == "PRUNED"
