"""A run as ``status`` and ``results`` read it: the spec it ran (its frozen one when the spec
changed), summary.json, and the numbers ``status`` shows (counts, run time, ETA, best)."""

from __future__ import annotations

import json
from typing import Any

import pytest
import yaml

from sweepspec.load import LoadedSpec, load_text
from sweepspec.records import TrialRecord
from sweepspec.run.ledger import Ledger
from sweepspec.run.rundir import RunDir
from sweepspec.run.view import RunView, read_as_ran, read_summary, status_data
from tests.builders import spec


def _loaded(**sections: Any) -> LoadedSpec:
    text = yaml.safe_dump(spec("v", **sections), sort_keys=False)
    return load_text(text, "spec.yaml", feasibility=False)


def _ledger(*records: TrialRecord) -> Ledger:
    ledger = Ledger()
    for r in records:
        ledger.records[r.trial_id] = r
    return ledger


def _view(
    loaded: LoadedSpec,
    ledger: Ledger,
    summary: dict[str, Any] | None = None,
    changed: list[str] | None = None,
    **meta: Any,
) -> RunView:
    rundir = RunDir.for_spec(loaded)
    made = rundir.create(loaded, "study")
    made.update(meta)
    rundir.write_meta(made)
    return RunView(rundir, made, ledger, loaded, changed or [], summary or {})


def test_status_data_counts_the_trials_and_estimates_what_is_left() -> None:
    ledger = _ledger(
        TrialRecord("0", "COMPLETE", {"loss": 0.5}, {"x": 0.1}, duration_s=10.0),
        TrialRecord("1", "COMPLETE", {"loss": 0.2}, {"x": 0.3}, duration_s=20.0),
        TrialRecord("2", "FAILED", duration_s=30.0),
        TrialRecord("3", "RUNNING"),
    )
    view = _view(_loaded(), ledger, {"running": True, "concurrency": 2}, elapsed_s=61.5)
    data = status_data(view)
    assert data["trials"] == {"COMPLETE": 2, "PRUNED": 0, "FAILED": 1, "RUNNING": 1}
    assert (data["num_samples"], data["running"], data["elapsed_s"]) == (4, True, 61.5)
    assert data["eta_s"] == 10.0  # one left at the mean of 10, 20 and 30 s, two at a time
    assert data["elapsed_recorded_at"] is not None and data["spec_changed"] == []
    assert data["best"] == [{"trial_id": "1", "metrics": {"loss": 0.2}, "params": {"x": 0.3}}]
    assert list(data["completed"]) == ["0", "1"]
    assert view.recorded_ago() is not None and view.recorded_ago() < 60


def test_the_eta_is_capped_by_the_time_budget_and_the_budget_is_the_runs() -> None:
    ledger = _ledger(TrialRecord("0", "COMPLETE", {"loss": 1.0}, duration_s=100.0))
    loaded = _loaded(stop={"sweep": {"time_budget": "2m"}})
    view = _view(loaded, ledger, elapsed_s=100.0, num_samples=10)
    data = status_data(view)
    assert data["num_samples"] == 10 and data["concurrency"] == 1
    assert data["eta_s"] == 20.0  # 900 s of trials, but 20 s of the budget are left
    assert status_data(_view(_loaded(trials={"num_samples": 1}), ledger))["eta_s"] == 0.0


def test_a_changed_spec_is_read_as_it_ran() -> None:
    ran = _loaded()
    view = _view(ran, Ledger(), changed=["space"])
    now = _loaded(space={"z": {"choice": ["a", "b"]}})
    as_ran = read_as_ran(now, view.rundir)
    assert [p.path for p in as_ran.spec.sampled_params()] == ["x", "y"]
    assert as_ran.spec.dump() == ran.spec.dump()
    assert view.warning("spec.yaml", "; more") == (
        f"warning: spec.yaml no longer matches its run in {view.rundir.path} (space changed); "
        "showing the run as it ran (spec.resolved.yaml); more. `sweepspec run` refuses this "
        "spec until --fresh (start over) or --warm-start"
    )


@pytest.mark.parametrize("frozen", [None, "sweepspec: 1\nspace: [", "sweepspec: 1\n"])
def test_a_frozen_spec_that_cannot_be_read_leaves_the_spec_given(frozen: str | None) -> None:
    loaded = _loaded()
    rundir = _view(loaded, Ledger()).rundir
    if frozen is None:
        rundir.resolved_spec.unlink()
    else:
        rundir.resolved_spec.write_text(frozen, encoding="utf-8")
    assert read_as_ran(loaded, rundir) is loaded


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, {}), ("{half", {}), ("[1, 2]", {}), ('{"running": true}', {"running": True})],
)
def test_read_summary_is_empty_when_missing_or_damaged(
    text: str | None, expected: dict[str, Any]
) -> None:
    rundir = _view(_loaded(), Ledger()).rundir
    if text is not None:
        rundir.summary.write_text(text, encoding="utf-8")
    assert read_summary(rundir) == expected
    view = RunView(rundir, {}, Ledger(), _loaded(), [], read_summary(rundir))
    assert view.running is bool(expected.get("running"))
    assert json.loads(json.dumps(status_data(view), default=str))["num_samples"] == 4
