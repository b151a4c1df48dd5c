"""Promotion-based ASHA (``scheduler: {type: asha, mode: promote}``): the rung arithmetic read
from a study's trials, and real sweeps from the CLI in which trials pause at rungs, resume from
their checkpoints when promoted, never repeat a step, and end as ASHA's paper says (every
trial in the top 1/reduction_factor of a rung went on to the next), also after a SIGKILL."""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path
from typing import Any

import pytest

optuna = pytest.importorskip("optuna")

from sweepspec.backends.optuna_backend.compile import rung_steps  # noqa: E402
from sweepspec.backends.optuna_backend.promotion import RungTable  # noqa: E402
from sweepspec_examples.toy import _curve_final  # noqa: E402
from tests.builders import (  # noqa: E402
    curve_spec,
    kill_group,
    load_study,
    no_leftovers,
    popen,
    read_csv,
    run_dir,
    run_ok,
    wait_until,
    write_spec,
)


def test_rung_steps() -> None:
    assert rung_steps(1, 2, 8) == (1, 2, 4)
    assert rung_steps(3, 2, 20) == (3, 6, 12)
    assert rung_steps(3, 3, 27) == (3, 9)
    assert rung_steps(5, 2, 5) == ()


def _attempt(
    number: int, logical: str, values: dict[int, float], state: str = "PRUNED", **attrs: Any
) -> Any:
    t = optuna.trial.create_trial(
        state=getattr(optuna.trial.TrialState, state),
        value=1.0 if state == "COMPLETE" else None,
        params={"lr": 0.01},
        distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)},
        user_attrs={"logical": logical, "attempt": 0, **attrs},
        intermediate_values=values,
    )
    t.number = number
    return t


def test_rung_table_ranks_pauses_and_promotes() -> None:
    rungs = (1, 2, 4)
    trials = [
        _attempt(0, "0", {1: 0.5}, paused=True),  # paused at rung 0
        _attempt(1, "1", {1: 0.3, 2: 0.2}, paused=True),  # went on, paused at rung 1
        _attempt(2, "2", {1: 0.9}, paused=True),
        _attempt(3, "3", {1: 0.1, 2: 0.4}, paused=True),
        _attempt(4, "0", {2: 0.45, 3: 0.4}, "RUNNING", promoted_to=1),  # 0's promotion
        _attempt(5, "4", {1: 0.2}, "RUNNING"),
        _attempt(6, "5", {1: 0.05}, rejected=True),  # never run: never counted
    ]
    table = RungTable.of(trials, rungs, 2, maximize=False)
    assert table.values[0] == {"0": 0.5, "1": 0.3, "2": 0.9, "3": 0.1, "4": 0.2}
    assert table.values[1] == {"0": 0.45, "1": 0.2, "3": 0.4}
    assert set(table.paused) == {"1", "2", "3"}  # 0 runs on: its pause is superseded
    assert table.paused["1"].rung == 1 and table.paused["2"].rung == 0
    # a promoted trial's duration_s already counts its runs before: not added up again
    twice = [
        _attempt(0, "7", {1: 0.5}, paused=True, duration_s=2.0),
        _attempt(1, "7", {2: 0.4}, paused=True, duration_s=5.0, prior_s=2.0),
    ]
    assert RungTable.of(twice, rungs, 2, maximize=False).paused["7"].ran_s == 5.0
    # rung 1 holds 3: its top 1 is trial 1 (0.2), paused there: promoted before anything of
    # rung 0, whose top 2 (3 and 4) are not paused at rung 0
    assert table.promotable() is not None and table.promotable().logical == "1"  # type: ignore[union-attr]
    assert table.crossing("4", 5, 1) == 0 and table.goes_on("4", 0)  # 0.2: top 2 of 5
    assert table.crossing("0", 4, 2) == 1 and not table.goes_on("0", 1)
    assert table.crossing("0", 4, 3) is None  # not a rung's first step
    for k in range(len(rungs)):
        assert table.crossing("1", 1, rungs[k]) == (k if k < 2 else None)
    # maximizing, the order turns round: rung 1's top is 3 (0.4), paused there
    up = RungTable.of(trials[:4], rungs, 2, maximize=True)
    assert up.promotable() is not None and up.promotable().logical == "3"  # type: ignore[union-attr]
    up = RungTable.of(trials[:3], rungs, 2, maximize=True)  # rung 1: one trial, no quota
    assert up.promotable() is not None and up.promotable().logical == "2"  # type: ignore[union-attr]


def _promote_spec(name: str, num_samples: int, step_seconds: float = 0.0) -> dict[str, Any]:
    return curve_spec(
        name,
        num_samples=num_samples,
        epochs=8,
        step_seconds=step_seconds,
        scheduler={"type": "asha", "max_t": 8, "grace_period": 1, "reduction_factor": 2,
                   "mode": "promote"},
        searcher={"type": "random", "seed": 3},
        resources={"max_concurrent": 2, "per_trial": {"cpu": 1}},
    )  # fmt: skip


def _reports(tmp_path: Path, name: str, trial_id: str) -> list[int]:
    path = run_dir(tmp_path, name) / "reports" / f"{trial_id}.jsonl"
    return [json.loads(line)["step"] for line in path.read_text().splitlines()]


def _check_promotion_invariant(tmp_path: Path, name: str, num_samples: int) -> None:
    """What a finished promotion-based ASHA run must hold, read from its own files."""
    rows = read_csv(tmp_path, name)
    assert sorted(int(r["trial_id"]) for r in rows) == list(range(num_samples))  # exactly once
    assert {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    loss = {r["trial_id"]: _curve_final(float(r["params.lr"])) for r in rows}
    reached: dict[str, int] = {}
    for r in rows:
        steps = _reports(tmp_path, name, r["trial_id"])
        reached[r["trial_id"]] = max(steps)
        assert set(steps) == set(range(1, max(steps) + 1))  # every step, none skipped
        assert int(r["iterations"]) == max(steps)
        assert (r["state"] == "COMPLETE") == (max(steps) == 8)
        if r["state"] == "PRUNED":
            assert max(steps) in (1, 2, 4)  # only ever stopped at a rung
    # the end, as the paper's algorithm leaves it: at every rung, the top 1/2 of the trials
    # that reached it went on (each curve ranks by final(lr) at every step)
    for rung, nxt in ((1, 2), (2, 4), (4, 8)):
        there = sorted((t for t in reached if reached[t] >= rung), key=loss.__getitem__)
        for t in there[: len(there) // 2]:
            assert reached[t] >= nxt, (t, rung, reached)
    best = min(loss, key=loss.__getitem__)
    assert reached[best] == 8  # the best trial always goes all the way
    assert sum(reached.values()) < 8 * num_samples  # cheaper than running every trial out


def test_trials_pause_at_rungs_and_resume_from_their_checkpoints(tmp_path: Path) -> None:
    name, n = "promote", 10
    write_spec(tmp_path, _promote_spec(name, n))
    out = run_ok(tmp_path)
    assert "PAUSED" in out.stderr
    _check_promotion_invariant(tmp_path, name, n)
    study = load_study(tmp_path, name)
    promoted = [t for t in study.get_trials() if "promoted_to" in t.user_attrs]
    assert promoted  # some trial paused and was promoted later
    for t in promoted:  # each run of a promoted trial started where its pause left it
        logical = str(t.user_attrs["logical"])
        steps = _reports(tmp_path, name, logical)
        assert len(steps) == len(set(steps))  # no step ran twice: resumed from the checkpoint
    # a second run of the finished sweep has nothing left to promote or run
    again = run_ok(tmp_path)
    assert "PAUSED" not in again.stderr
    assert len(load_study(tmp_path, name).get_trials()) == len(study.get_trials())


def test_a_killed_promotion_run_resumes_and_ends_as_asha_says(tmp_path: Path) -> None:
    name, n = "promote-killed", 10
    write_spec(tmp_path, _promote_spec(name, n, step_seconds=0.1))
    journal = run_dir(tmp_path, name) / "study.journal"

    def some_paused() -> bool:
        try:
            return any(t.user_attrs.get("paused") for t in load_study(tmp_path, name).get_trials())
        except Exception:  # not written yet
            return False

    for _ in range(2):
        proc = popen(tmp_path)
        assert wait_until(lambda: journal.exists() and some_paused(), timeout=60)
        time.sleep(0.5)
        err = kill_group(proc)
        assert "Traceback" not in err, err
        assert no_leftovers(tmp_path)
    run_ok(tmp_path)
    _check_promotion_invariant(tmp_path, name, n)


def test_two_drivers_on_one_study_promote_each_paused_trial_once(tmp_path: Path) -> None:
    """``sweepspec run`` and a ``sweepspec worker`` on the same journal: the decisions are
    read from the study under the launch gate, so no paused trial is promoted twice and no
    two runs of one trial overlap."""
    import subprocess
    import sys

    from tests.builders import env

    name, n = "promote-workers", 12
    data = _promote_spec(name, n, step_seconds=0.05)
    data["resources"] = {"max_concurrent": 1, "per_trial": {"cpu": 1}}
    write_spec(tmp_path, data)
    journal = run_dir(tmp_path, name) / "study.journal"
    procs = [popen(tmp_path)]
    assert wait_until(journal.exists, timeout=60)
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "sweepspec", "worker", "spec.yaml"],
            cwd=tmp_path,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    )
    for p in procs:
        _, err = p.communicate(timeout=180)
        assert p.returncode == 0 and b"Traceback" not in err, err
    run_ok(tmp_path)  # the results of the run as a whole (a worker leaves them to the run)
    _check_promotion_invariant(tmp_path, name, n)
    runs: dict[str, list[Any]] = {}
    for t in load_study(tmp_path, name).get_trials():
        if "logical" in t.user_attrs:
            runs.setdefault(str(t.user_attrs["logical"]), []).append(t)
    promotions = [
        (logical, t.user_attrs["promoted_to"])
        for logical, ts in runs.items()
        for t in ts
        if "promoted_to" in t.user_attrs
    ]
    assert promotions and len(promotions) == len(set(promotions))  # each once
    for ts in runs.values():  # one trial's runs follow one another
        ts.sort(key=lambda t: t.number)
        for a, b in itertools.pairwise(ts):
            assert a.datetime_complete <= b.datetime_start
    owners = {t.user_attrs.get("owner") for ts in runs.values() for t in ts}
    assert len(owners) == 2  # both drivers ran trials
