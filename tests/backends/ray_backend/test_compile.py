"""The ray compiler (no Ray started): what each spec section compiles to, and that the searcher
adapter draws the same configs as the Optuna backend for the same spec and seed."""

from __future__ import annotations

import math
from typing import Any

import pytest
import yaml

from sweepspec.backends.ray_backend.compile import (
    RAY_SCHEDULERS,
    RayPlan,
    compile_ray,
    describe_ray,
)
from sweepspec.errors import SweepspecError
from sweepspec.load import load_text
from tests import builders

pytestmark = pytest.mark.ray

#: The tests' spec with the spec language's defaults for searcher, trials and resources.
BASE: dict[str, Any] = {
    "objective": {"function": "sweepspec_examples.toy:curve", "metric": "loss", "mode": "min"},
    "space": {"lr": {"loguniform": [1e-4, 1e-1]}},
    "searcher": None,
    "trials": None,
    "resources": None,
}


def load(**sections: Any) -> Any:
    data = builders.spec("c", "ray", **{**BASE, **sections})
    return load_text(yaml.safe_dump(data), "spec.yaml")


def scheduler_of(plan: RayPlan) -> Any:
    from sweepspec.backends.ray_backend.schedulers import build_scheduler

    return build_scheduler(plan)


def searcher_of(plan: RayPlan) -> Any:
    from sweepspec.backends.ray_backend.search import SpecSearch

    return SpecSearch(plan, seed=plan.search.seed)


def stopper_of(plan: RayPlan) -> Any:
    from sweepspec.backends.ray_backend.stopper import SpecStopper

    return SpecStopper(plan)


@pytest.mark.parametrize(
    ("scheduler", "kwargs"),
    [
        ({"type": "fifo"}, {}),
        (
            {"type": "asha", "max_t": 20, "grace_period": 2, "reduction_factor": 3},
            {
                "time_attr": "training_iteration",
                "max_t": 20,
                "grace_period": 2,
                "reduction_factor": 3,
                "brackets": 1,
            },
        ),
        (
            {"type": "hyperband", "max_t": 27},
            {"time_attr": "training_iteration", "max_t": 27, "reduction_factor": 3},
        ),
        (
            {"type": "median", "grace_period": 3, "min_samples_required": 2},
            {"time_attr": "training_iteration", "grace_period": 3.0, "min_samples_required": 2},
        ),
        (
            {"type": "pbt", "perturbation_interval": 2, "quantile_fraction": 0.5},
            {
                "time_attr": "training_iteration",
                "perturbation_interval": 2.0,
                "quantile_fraction": 0.5,
                "resample_probability": 0.25,
            },
        ),
    ],
)
def test_scheduler_table(scheduler: dict[str, Any], kwargs: dict[str, Any]) -> None:
    plan = compile_ray(load(scheduler=scheduler).spec)
    assert plan.scheduler == scheduler["type"]
    assert plan.scheduler_kwargs == kwargs
    built = scheduler_of(plan)  # Ray objects, built without starting Ray
    from ray.tune import schedulers

    assert isinstance(built, getattr(schedulers, RAY_SCHEDULERS[plan.scheduler]))
    if plan.scheduler in ("asha", "median"):
        assert built._time_attr == "training_iteration"


def test_pbt_mutations_from_space() -> None:
    space = {
        "lr": {"loguniform": [1e-4, 1e-1]},
        "u": {"uniform": [0.0, 1.0]},
        "q": {"uniform": [0.0, 1.0], "step": 0.25},
        "n": {"int": [1, 8]},
        "ln": {"int": [2, 64], "log": True},
        "opt": {"choice": ["adam", "sgd"]},
        "arch": {"choice": [[64, 64], [128]]},
        "mom": {"uniform": [0.0, 0.9], "when": "opt == 'sgd'"},
        "seed": 3,
    }
    plan = compile_ray(load(space=space, scheduler={"type": "pbt"}).spec)
    assert plan.mutations == {
        "lr": ("loguniform", 1e-4, 1e-1),
        "u": ("uniform", 0.0, 1.0),
        "q": ("quniform", 0.0, 1.0, 0.25),
        "n": ("randint", 1, 9),  # Tune's randint excludes its upper bound; ours includes it
        "ln": ("lograndint", 2, 65),
        "opt": ("choice", ["adam", "sgd"]),
        "arch": ("choice", [[64, 64], [128]]),
    }  # "mom" is conditional, "seed" fixed: neither mutates by default
    from sweepspec.backends.ray_backend.schedulers import build_mutations

    built = build_mutations(plan)
    assert built["arch"] == [[64, 64], [128]]
    assert type(built["n"]).__name__ == "Integer"
    listed = compile_ray(load(space=space, scheduler={"type": "pbt", "mutations": ["mom"]}).spec)
    assert list(listed.mutations) == ["mom"]


def test_pbt_keeps_mutations_inside_the_space() -> None:
    space = {"x": {"uniform": [0.0, 1.0]}, "n": {"int": [1, 4]}}
    spec = load(
        space=space,
        scheduler={"type": "pbt", "resample_probability": 0.0},
        constraints=["x <= 0.9"],
    ).spec
    pbt = scheduler_of(compile_ray(spec))

    class T:
        config = {"x": 0.85, "n": 4}

    for _ in range(50):
        new, _ops = pbt._get_new_config(T(), T())
        assert 0.0 <= new["x"] <= 0.9  # clipped to the bounds, constraint kept
        assert 1 <= new["n"] <= 4 and isinstance(new["n"], int)


def test_stops_resources_budget_and_describe() -> None:
    spec = load(
        objective={**BASE["objective"], "mode": "max", "metric": "acc"},
        stop={
            "trial": {"training_iteration": 5, "acc": 0.9, "loss": {"<": 0.1}},
            "sweep": {"time_budget": "10m", "target": {"acc": 0.99}},
        },
        trials={"num_samples": 7, "max_retries": 2, "timeout": "30s", "max_failed": 3},
        resources={"per_trial": {"cpu": 0.5, "gpu": 0.25}, "max_concurrent": 3},
        try_first=[{"lr": 1e-3}],
    ).spec
    plan = compile_ray(spec)
    assert sorted(plan.stop.thresholds) == [
        ("acc", ">=", 0.9),
        ("loss", "<", 0.1),
        ("training_iteration", ">=", 5.0),
    ]
    assert plan.time_budget_s == 600 and plan.target == {"acc": 0.99}
    assert plan.resources == {"cpu": 0.5, "gpu": 0.25}
    assert (plan.max_concurrent, plan.max_failures, plan.timeout_s) == (3, 2, 30)
    assert plan.num_samples == 7 and plan.search.try_first == ({"lr": 1e-3},)
    assert (plan.metric, plan.mode) == ("acc", "max")
    text = "\n".join(describe_ray(spec, "tune"))
    for part in (
        "OptunaSearch(define-by-run",
        "TPESampler",
        "FIFOScheduler",
        "time_budget_s=600",
        "max_concurrent_trials=3",
        "max_failures=2",
        "'gpu': 0.25",
        "points_to_evaluate=1 try_first",
    ):
        assert part in text, text


def test_grid_values_multiply_num_samples_and_multi_objective() -> None:
    spec = load(
        space={"lr": {"loguniform": [1e-4, 1e-1]}, "bs": {"grid": [16, 32, 64]}},
        trials={"num_samples": 2},
    ).spec
    assert compile_ray(spec).num_samples == 6
    multi = load(
        objective={
            "function": "sweepspec_examples.toy:multi",
            "metrics": {"accuracy": "max", "latency_ms": "min"},
            "metric": None,  # the builder's single metric is dropped
            "mode": None,
        },
        space={"width": {"int": [8, 512]}},
    ).spec
    plan = compile_ray(multi)
    assert plan.metric == ["accuracy", "latency_ms"] and plan.mode == ["max", "min"]
    assert plan.single_metric is None


def test_stopper() -> None:
    spec = load(
        stop={"trial": {"training_iteration": 3, "loss": 0.5}, "sweep": {"target": {"loss": 0.1}}},
        trials={"max_failed": 2},
    ).spec
    stopper = stopper_of(compile_ray(spec))
    assert not stopper("t", {"training_iteration": 1, "loss": 0.9})
    assert stopper("t", {"training_iteration": 9, "sweepspec_iterations": 3, "loss": 0.9})
    assert stopper("t", {"training_iteration": 1, "loss": 0.4})  # min metric: <= 0.5
    assert stopper.reason is None
    stopper("t", {"training_iteration": 1, "loss": 0.05})  # a stop rule ends it: counts
    assert stopper.reason == "target"
    assert not stopper.stop_all()  # running trials are not cut off: launching stops
    s2 = stopper_of(compile_ray(spec))
    s2.note_failure()
    assert s2.reason is None
    s2.note_failure()
    assert s2.reason == "max_failed: 2 trials failed" and not s2.stop_all()


def test_resources_checked_against_nodes() -> None:
    from sweepspec.backends.ray_backend.session import check_resources

    plan = compile_ray(load(resources={"per_trial": {"cpu": 0.5, "gpu": 0.5}}).spec)
    assert check_resources(plan, [{"CPU": 2.0, "GPU": 2.0}]) == 4
    assert check_resources(plan, [{"CPU": 1.0, "GPU": 1.0}, {"CPU": 8.0}]) == 2
    big = compile_ray(load(resources={"per_trial": {"cpu": 1, "gpu": 2}}).spec)
    with pytest.raises(SweepspecError, match="no node of the Ray cluster has that much"):
        check_resources(big, [{"CPU": 16.0, "GPU": 1.0}, {"CPU": 4.0, "GPU": 1.0}])


# -- the same configs as the Optuna backend ---------------------------------------------

PARITY_SPACE = {
    "x": {"uniform": [-1.0, 1.0]},
    "n": {"int": [1, 16], "log": True},
    "arch": {"choice": [[64, 64], [128], [32, 32, 32]]},
    "opt": {"choice": ["adam", "sgd"]},
    "momentum": {"uniform": [0.0, 0.99], "when": "opt == 'sgd'"},
    "group": {"drop": {"uniform": [0.0, 0.5], "step": 0.05}},
    "seed": 7,
}


def _loss(values: dict[str, Any]) -> float:
    return (
        (values["x"] - 0.2) ** 2
        + 0.01 * values["n"]
        + values["group.drop"]
        + (0.1 if values["opt"] == "sgd" else 0.0)
    )


def _optuna_backend_configs(spec: Any, n: int) -> list[dict[str, Any]]:
    """The first ``n`` configs of the Optuna backend's own path: its study, try_first
    enqueued, the shared feasible ask."""
    import optuna

    from sweepspec.search.asker import FeasibleAsker
    from sweepspec.search.plan import compile_search
    from sweepspec.search.samplers import build_sampler

    plan = compile_search(spec)
    study = optuna.create_study(directions=plan.directions, sampler=build_sampler(plan, plan.seed))
    for params in plan.try_first:  # as the Optuna backend's session enqueues them
        study.enqueue_trial(dict(params), skip_if_exists=True)
    asker = FeasibleAsker(plan, study)
    out = []
    for _ in range(n):
        asked = asker.ask()
        out.append(asked.values)
        study.tell(asked.trial, _loss(asked.values))
    return out


def _ray_configs(spec: Any, n: int) -> list[dict[str, Any]]:
    """The first ``n`` configs of the Ray searcher adapter, driven as Tune drives it."""
    plan = compile_ray(spec)
    searcher = searcher_of(plan)
    sampled = {p.path for p in plan.space.sampled}
    out = []
    for i in range(n):
        config = searcher.suggest(f"t{i}")
        assert config["seed"] == 7  # fixed values come with the sampled ones
        values = {k: v for k, v in config.items() if k in sampled}
        out.append(values)
        result = {"loss": _loss(values), "training_iteration": 1}
        searcher.on_trial_result(f"t{i}", result)
        searcher.on_trial_complete(f"t{i}", {**result, "done": True})  # as Ray ends a trial
    return out


@pytest.mark.parametrize(
    "searcher",
    [
        {"type": "random", "seed": 3},
        {"type": "tpe", "seed": 3, "options": {"n_startup_trials": 4}},
        {"type": "hyperopt", "seed": 3, "options": {"n_startup_jobs": 4}},
    ],
)
def test_same_configs_as_the_optuna_backend(searcher: dict[str, Any]) -> None:
    spec = load(
        space=PARITY_SPACE,
        searcher=searcher,
        constraints=["x + group.drop <= 0.9"],  # some samples are rejected
        try_first=[{"x": 0.5, "opt": "sgd"}],
    ).spec
    n = 14
    expected = _optuna_backend_configs(spec, n)
    got = _ray_configs(spec, n)
    assert got == expected
    assert got[0]["x"] == 0.5 and got[0]["opt"] == "sgd"
    assert all(c["x"] + c["group.drop"] <= 0.9 for c in got)
    assert any("momentum" not in c for c in got) and any("momentum" in c for c in got)
    assert all(isinstance(c["arch"], list) for c in got)


def test_searcher_pickles_and_tells_pruned_trials() -> None:
    import pickle

    import optuna

    spec = load(
        scheduler={"type": "asha", "max_t": 10, "grace_period": 1},
        searcher={"type": "tpe", "seed": 0},
    ).spec
    searcher = searcher_of(compile_ray(spec))
    for i in range(3):
        searcher.suggest(f"t{i}")
    searcher.on_trial_result("t0", {"loss": 1.0, "training_iteration": 1})
    searcher.on_trial_complete("t0", {"loss": 0.5, "training_iteration": 2, "done": True})
    searcher.on_trial_result("t1", {"loss": 0.4, "training_iteration": 10})
    searcher.on_trial_complete("t1", {"loss": 0.4, "training_iteration": 10, "done": True})
    searcher.on_trial_result("t2", {"loss": math.nan, "training_iteration": 1})  # ignored
    searcher.on_trial_complete("t2", None, error=True)
    states = [t.state for t in searcher.study.get_trials(deepcopy=False)]
    assert states == [
        optuna.trial.TrialState.PRUNED,
        optuna.trial.TrialState.COMPLETE,
        optuna.trial.TrialState.FAIL,
    ]
    clone = pickle.loads(pickle.dumps(searcher))  # Ray saves the searcher with plain pickle
    assert len(clone.study.get_trials(deepcopy=False)) == 3


def test_adopted_trials_are_told_once_and_not_run_again() -> None:
    """On resume, trials that ended after Ray's last snapshot are told to the restored
    searcher; a replayed proposal of one of their configs is skipped."""
    import pickle

    import optuna

    spec = load(searcher={"type": "random", "seed": 0}).spec
    searcher = searcher_of(compile_ray(spec))
    searcher.suggest("t0")
    snapshot = pickle.dumps(searcher)  # what Ray's last snapshot holds
    after = [searcher.suggest(f"t{i}")["lr"] for i in (1, 2)]  # proposed after the snapshot

    restored = pickle.loads(snapshot)
    ends = [
        {"ray_id": "r1", "state": "COMPLETE", "params": {"lr": after[0]}, "metrics": {"loss": 1.5}},
        {"ray_id": "r2", "state": "PRUNED", "params": {"lr": after[1]}, "metrics": {"loss": 9.0}},
    ]
    assert restored.adopt(ends) == 2
    assert restored.adopt(ends) == 0  # idempotent
    told = restored.study.get_trials(deepcopy=False)
    assert [(t.state, t.params["lr"], t.values) for t in told[1:]] == [
        (optuna.trial.TrialState.COMPLETE, after[0], [1.5]),
        (optuna.trial.TrialState.PRUNED, after[1], None),
    ]
    fresh = restored.suggest("t3")["lr"]  # the seeded sampler replays after[0], after[1]
    assert fresh not in after
    replays = [t for t in restored.study.get_trials(deepcopy=False) if "replay_of" in t.user_attrs]
    assert [t.user_attrs["replay_of"] for t in replays] == ["r1", "r2"]
    assert {t.state for t in replays} == {optuna.trial.TrialState.FAIL}


def test_snapshot_after_each_added_trial_only_under_ray_client() -> None:
    local = scheduler_of(compile_ray(load().spec))
    client = load(backend={"type": "ray", "address": "ray://head:10001"}).spec
    assert local.snapshot_each_trial is False
    assert scheduler_of(compile_ray(client)).snapshot_each_trial is True


def test_reconcile_keeps_ended_trials_and_drops_lost_ones(tmp_path: Any) -> None:
    import json

    from sweepspec.backends.ray_backend.ledger_file import LedgerFile
    from sweepspec.backends.ray_backend.restore import (
        StateDamaged,
        reconcile,
        snapshot_trial_ids,
    )

    trial = json.dumps({"trial_id": "known1"})
    state = json.dumps({"trial_data": [[trial, "{}"]], "runner_data": {}})
    (tmp_path / "experiment_state-2026-11-27_10-00-00.json").write_text(state)
    # the searcher's state, which Ray writes beside it: without it the state cannot be restored
    with pytest.raises(StateDamaged, match=r"has no search_gen_state-<time>.json"):
        snapshot_trial_ids(tmp_path)
    import pickle

    for name in ("search_gen_state-2026-11-27_10-00-00.json", "searcher-state-2026-11-27.pkl"):
        (tmp_path / name).write_bytes(pickle.dumps({"counter": 1}))
    ledger = LedgerFile(tmp_path / "ledger.jsonl")
    for ray_id in ("known1", "ended2", "lost3"):
        ledger.append({"event": "start", "ray_id": ray_id, "trial_id": ray_id}, sync=False)
    for ray_id in ("known1", "ended2"):
        ledger.append({"event": "end", "ray_id": ray_id, "state": "COMPLETE"}, sync=False)
    known = snapshot_trial_ids(tmp_path)
    assert known == {"known1"}
    adopted, dropped = reconcile(known, ledger)
    assert [e["ray_id"] for e in adopted] == ["ended2"] and dropped == 1
    drops = [e["ray_id"] for e in ledger.events() if e["event"] == "drop"]
    assert drops == ["lost3"]
    assert reconcile(known, ledger)[1] == 0  # a second resume does not drop it again
    assert [e["ray_id"] for e in ledger.events() if e["event"] == "drop"] == ["lost3"]
    # a newer snapshot torn in the middle: Ray would start over; it is reported as damaged
    (tmp_path / "experiment_state-2026-11-28_10-00-00.json").write_text(state[: len(state) // 2])
    with pytest.raises(StateDamaged, match=r"experiment_state-2026-11-28_10-00-00.json cannot"):
        snapshot_trial_ids(tmp_path)


def test_no_secret_in_what_ray_saves() -> None:
    import pickle

    from sweepspec.backends.ray_backend.trainable import TrialContext

    spec = load(tracking={"mlflow": {"tracking_uri": "http://tracking.example:5000"}}).spec
    plan = compile_ray(spec)
    ctx = TrialContext("m:f", "/base", plan, "/runs/c", "/cwd", ())
    for obj in (searcher_of(plan), ctx, stopper_of(plan)):
        assert b"tracking.example" not in pickle.dumps(obj)


def test_the_driver_callback_pickles_without_the_tracker(tmp_path: Any) -> None:
    import pickle

    from sweepspec.backends.ray_backend.callback import SweepCallback
    from sweepspec.backends.ray_backend.ledger_file import LedgerFile
    from sweepspec.run.tracking import MlflowSync

    plan = compile_ray(load().spec)
    callback = SweepCallback(
        plan, LedgerFile(tmp_path / "ledger.jsonl"), stopper_of(plan), None, 0.0
    )
    tracker = MlflowSync("http://user:hunter2@tracking.example:5000", "e", "id", "s")
    callback.on_record = lambda ledger: tracker.sync_in_background([])
    saved = pickle.dumps(callback)  # Ray writes it into tuner.pkl
    assert b"hunter2" not in saved and b"tracking.example" not in saved
    assert pickle.loads(saved).on_record is None


def test_a_silent_restart_by_ray_stops_the_run_before_any_trial(tmp_path: Any) -> None:
    """Ray starts the experiment over, silently, when its restore fails: the callback, told
    the snapshot's trials, finds none of them at the first step and stops the run."""
    from types import SimpleNamespace

    from sweepspec.backends.ray_backend.callback import SweepCallback
    from sweepspec.backends.ray_backend.ledger_file import LedgerFile
    from sweepspec.backends.ray_backend.stopper import SpecStopper

    plan = compile_ray(load().spec)
    ledger = LedgerFile(tmp_path / "ledger.jsonl")

    def callback(restored: set[str]) -> SweepCallback:
        cb = SweepCallback(plan, ledger, SpecStopper(plan), None, 0.0)
        cb.restored = restored
        return cb

    restored = callback({"a1", "b2"})
    restored.on_step_begin(0, [SimpleNamespace(trial_id="b2")])  # Ray restored them: fine
    restored.on_step_begin(1, [])  # (checked at the first step only)
    restarted = callback({"a1", "b2"})
    with pytest.raises(SweepspecError, match="Ray could not restore its experiment state"):
        restarted.on_step_begin(0, [])
    assert restarted.fatal is not None and not ledger.events()
