"""The session around a backend's loop: the one changed-spec test (``spec_changes``) that
``open_rundir`` refuses on and ``resume_verdict`` reports, and the run time that
``Session.update`` keeps current in meta.json while trials run (a time check per call)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from sweepspec.errors import SweepspecError
from sweepspec.load import LoadedSpec, load_text
from sweepspec.records import TrialRecord
from sweepspec.run import session as session_module
from sweepspec.run.ledger import Ledger
from sweepspec.run.rundir import RunDir, made_with, spec_changes
from sweepspec.run.session import ELAPSED_EVERY_S, Session, open_rundir, resume_verdict
from tests.builders import spec


def _loaded(name: str = "s", backend: str = "optuna", **sections: Any) -> LoadedSpec:
    text = yaml.safe_dump(spec(name, backend, **sections), sort_keys=False)
    return load_text(text, "spec.yaml", feasibility=False)


def _made(loaded: LoadedSpec, num_samples: int | None = None) -> RunDir:
    rundir = RunDir.for_spec(loaded)
    meta = rundir.create(loaded, "study")
    if num_samples is not None:
        meta["num_samples"] = num_samples
        rundir.write_meta(meta)
    return rundir


@pytest.mark.parametrize(
    ("other", "changed"),
    [
        ({}, []),
        ({"trials": {"num_samples": 40}}, []),  # a budget: the run is extended
        ({"space": {"x": {"uniform": [0.0, 1.0]}}}, ["space"]),
        ({"searcher": {"seed": 1}, "objective": {"mode": "max"}}, ["objective", "searcher"]),
        ({"backend": "ray"}, ["backend optuna -> ray"]),
    ],
    ids=["same", "budget", "space", "objective-searcher", "backend"],
)
def test_spec_changes_names_what_makes_old_results_meaningless(
    other: dict[str, Any], changed: list[str]
) -> None:
    before = _loaded()
    sections = dict(other)
    after = _loaded("s", sections.pop("backend", "optuna"), **sections)
    assert spec_changes(after, made_with(before)) == changed
    # a meta.json that names no backend: the spec's own is assumed
    assert spec_changes(after, {"fingerprint": made_with(before)["fingerprint"]}) == [
        c for c in changed if not c.startswith("backend")
    ]


def test_open_rundir_refuses_a_changed_spec_and_resume_verdict_says_so() -> None:
    loaded = _loaded()
    assert resume_verdict(loaded) == {
        "dir": str(RunDir.for_spec(loaded).path),
        "verdict": "new",
        "changed": [],
    }
    rundir = _made(loaded, num_samples=4)
    assert spec_changes(loaded, rundir.read_meta()) == []
    assert open_rundir(loaded, fresh=False, warm_start=False) == (rundir, None)
    assert resume_verdict(loaded)["verdict"] == "resume"
    assert resume_verdict(_loaded(trials={"num_samples": 9}))["trials"] == [4, 9]
    assert resume_verdict(_loaded(trials={"num_samples": 9}))["verdict"] == "extend"
    smaller = resume_verdict(_loaded(trials={"num_samples": 2}))
    assert (smaller["verdict"], smaller["trials"]) == ("resume", [4, 2])

    changed = _loaded(space={"x": {"uniform": [0.0, 1.0]}})
    verdict = resume_verdict(changed)
    assert (verdict["verdict"], verdict["changed"]) == ("refused", ["space"])
    with pytest.raises(SweepspecError) as info:
        open_rundir(changed, fresh=False, warm_start=False)
    assert str(info.value).startswith("the spec changed since this run was created (space);")
    other = _loaded(backend="ray")
    with pytest.raises(SweepspecError, match=r"\(backend optuna -> ray\)"):
        open_rundir(other, fresh=False, warm_start=False)


class _Clock:
    """``time`` for the session module, with a monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def monotonic(self) -> float:
        return self.now


def _session(monkeypatch: pytest.MonkeyPatch, *, primary: bool = True) -> tuple[Session, _Clock]:
    loaded = _loaded()
    rundir = _made(loaded)
    clock = _Clock()
    monkeypatch.setattr(session_module, "time", SimpleNamespace(monotonic=clock.monotonic))
    session = Session(
        loaded, rundir, rundir.read_meta(), None, None, started=clock.now, primary=primary
    )
    session._timed = clock.now
    return session, clock


def _elapsed(rundir: RunDir) -> float:
    return float(rundir.read_meta()["elapsed_s"])


def test_update_keeps_the_run_time_current_while_a_long_trial_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    session, clock = _session(monkeypatch)
    ledger = Ledger()
    ledger.in_flight.add("0")
    session.update(ledger, {}, total=4)  # the first results files (none finished)
    summary = session.rundir.summary.read_text()
    clock.now += ELAPSED_EVERY_S / 2
    session.update(ledger, {}, total=4)
    assert _elapsed(session.rundir) == 0.0  # not yet: a time check, nothing written
    for _ in range(3):  # an hour-long trial: the run time follows it
        clock.now += ELAPSED_EVERY_S
        session.update(ledger, {}, total=4)
        assert _elapsed(session.rundir) == pytest.approx(clock.now - session.started)
    assert session.rundir.summary.read_text() == summary  # only the run time

    ledger.records["0"] = TrialRecord("0", "COMPLETE", {"loss": 1.0}, duration_s=1.0)
    ledger.in_flight.clear()
    clock.now += 1.0
    session.update(ledger, {}, total=4)  # a trial finished: results, and the time with them
    assert session.rundir.summary.read_text() != summary
    assert _elapsed(session.rundir) == pytest.approx(clock.now - session.started)


def test_a_worker_keeps_no_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    session, clock = _session(monkeypatch, primary=False)
    clock.now += 10 * ELAPSED_EVERY_S
    session.update(Ledger(), {}, total=4)
    assert _elapsed(session.rundir) == 0.0
