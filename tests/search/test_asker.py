"""The feasible ask: with no WAITING trial (the Optuna driver's ledger knows), a trial is
created without Optuna's scan of every trial for one, so an ask costs the same at the
10,000th trial; with one, it is popped as ``study.ask()`` pops it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sweepspec.load import load_text
from sweepspec.search.asker import REJECTED_ATTR, FeasibleAsker
from sweepspec.search.plan import compile_search
from sweepspec.search.samplers import build_sampler

SPEC = """\
sweepspec: 1
objective: {function: m:f, metric: loss, mode: min}
space:
  x: {uniform: [0.0, 1.0]}
  y: {uniform: [0.0, 1.0]}
constraints: ["x + y <= 1.5"]
searcher: {type: random, seed: 0}
"""


def _asker(tmp_path: Path) -> tuple[FeasibleAsker, Any, list[int]]:
    import optuna
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    plan = compile_search(load_text(SPEC, "s.yaml").spec)
    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(storage=storage, sampler=build_sampler(plan, plan.seed))
    scans: list[int] = []
    real = storage.get_all_trials

    def counted(*args: Any, **kwargs: Any) -> Any:
        out = real(*args, **kwargs)
        scans.append(len(out))
        return out

    storage.get_all_trials = counted  # type: ignore[method-assign]
    # the worst values come from the caller (the Optuna driver keeps them from its ledger)
    return FeasibleAsker(plan, study, worst=lambda: [2.0]), study, scans


@pytest.mark.parametrize("trials", [50, 400])
def test_an_ask_without_waiting_trials_reads_no_trial(tmp_path: Path, trials: int) -> None:
    asker, study, scans = _asker(tmp_path)
    for _ in range(trials):
        asked = asker.ask(waiting=False)
        study.tell(asked.trial, asked.values["x"])
    assert scans == []  # (the random sampler reads none either; rejections neither)
    rejected = [t for t in study.trials if t.user_attrs.get(REJECTED_ATTR)]
    assert rejected and all(t.values == [2.0] for t in rejected)  # told the caller's worst
    assert {t.state.name for t in study.trials} == {"COMPLETE"}


def test_a_waiting_trial_is_popped_first(tmp_path: Path) -> None:
    asker, study, _ = _asker(tmp_path)
    for _ in range(5):
        asked = asker.ask(waiting=False)
        study.tell(asked.trial, 1.0)
    study.enqueue_trial({"x": 0.25, "y": 0.5})
    asked = asker.ask(waiting=True)
    assert asked.values == {"x": 0.25, "y": 0.5}
    study.tell(asked.trial, 0.0)
    assert [t.state.name for t in study.trials].count("WAITING") == 0
    unknown = asker.ask()  # the caller does not know: the study is asked (nothing waits)
    assert unknown.trial.number == 6
