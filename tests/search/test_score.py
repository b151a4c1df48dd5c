"""``objective.score`` in the search plan: each report's own score, a finished trial's score
or why it fails, the stops that name it, and warm start from old trials' metrics."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sweepspec.load import load_text
from sweepspec.records import TrialRecord, best_trials
from sweepspec.search.plan import SearchPlan, compile_search
from sweepspec.search.stops import stop_rule, target_reached
from sweepspec.spec.root import Spec

TEXT = """\
sweepspec: 1
name: scored
objective:
  function: m:f
  metrics: [accuracy, latency_ms]
  score: "0.7 * accuracy - 0.003 * latency_ms"
  mode: max
space:
  x: {uniform: [0.0, 1.0]}
stop:
  trial: {score: 0.6, latency_ms: {">": 100}}
  sweep: {target: {score: 0.65}}
"""


def _spec(text: str = TEXT) -> Spec:
    return load_text(text, "spec.yaml", feasibility=False).spec


@pytest.fixture
def plan() -> SearchPlan:
    return compile_search(_spec())


def test_the_plan_optimises_the_score(plan: SearchPlan) -> None:
    assert plan.objectives == {"score": "max"}
    assert (plan.directions, plan.metric_names, plan.single_metric) == (
        ["maximize"],
        ["score"],
        "score",
    )
    assert plan.score is not None and plan.score.metrics == ("accuracy", "latency_ms")


def test_without_a_score_a_report_is_left_as_it_is() -> None:
    plan = compile_search(_spec(TEXT.replace(
        "  metrics: [accuracy, latency_ms]\n  score: \"0.7 * accuracy - 0.003 * latency_ms\"\n",
        "  metric: accuracy\n",
    ).split("stop:")[0]))  # fmt: skip
    report = {"accuracy": 0.5}
    assert plan.score is None and plan.scored(report) is report
    assert plan.final_values({"accuracy": 0.5}) == [0.5]


@pytest.mark.parametrize(
    ("report", "score"),
    [
        ({"accuracy": 0.9, "latency_ms": 10.0}, 0.7 * 0.9 - 0.003 * 10.0),
        ({"accuracy": 1, "latency_ms": 0, "epoch": 3}, 0.7),  # ints, and others beside
        ({"accuracy": 0.9}, None),  # a metric of the score missing: no score
        ({"accuracy": math.nan, "latency_ms": 1.0}, None),  # not finite: no score
        ({"accuracy": math.inf, "latency_ms": 1.0}, None),
        ({"accuracy": True, "latency_ms": 1.0}, None),  # a bool is no number
        ({"accuracy": "0.9", "latency_ms": 1.0}, None),
        ({"accuracy": 0.9, "latency_ms": 1.0, "score": 5.0}, None),  # the objective's own
    ],
)
def test_a_reports_own_score(plan: SearchPlan, report: dict[str, Any], score: float | None) -> None:
    assert plan.score is not None
    value = plan.score.of(report)
    assert value == (pytest.approx(score) if score is not None else None)
    scored = plan.scored(report)
    if score is None:
        assert scored is report  # unchanged: what the scheduler is shown has no score
    else:
        assert scored == {**report, "score": pytest.approx(score)}
        assert "score" not in report  # the report itself is not changed


def test_a_finished_trials_score_is_set_beside_its_metrics(plan: SearchPlan) -> None:
    metrics: dict[str, Any] = {"accuracy": 0.9, "latency_ms": 10.0, "val_loss": 0.3}
    assert plan.final_values(metrics) == [pytest.approx(0.6)]
    assert metrics == {"accuracy": 0.9, "latency_ms": 10.0, "val_loss": 0.3, "score": 0.6}


@pytest.mark.parametrize(
    ("metrics", "error"),
    [
        (
            {"accuracy": 0.9, "latency": 1.0},
            "missing_metric: the trial did not report 'latency_ms' (did you mean 'latency'?)",
        ),
        ({"accuracy": 0.9, "latency_ms": math.nan}, "nan_metric: latency_ms = nan is not a"),
        ({"accuracy": 0.9, "latency_ms": "nan"}, "nan_metric: latency_ms = nan is not a"),
        (
            {"accuracy": 0.9, "latency_ms": 1.0, "score": 1.0},
            "reserved_metric: the trial reported 'score' itself",
        ),
        ({"__return__": 0.9}, "missing_metric: the trial did not report 'accuracy'"),
    ],
)
def test_a_finished_trial_fails_as_for_a_metric(
    plan: SearchPlan, metrics: dict[str, Any], error: str
) -> None:
    result = plan.final_values(metrics)
    assert isinstance(result, str) and result.startswith(error), result


@pytest.mark.parametrize(
    ("score", "metrics", "error"),
    [
        pytest.param(
            "log(accuracy) + latency_ms",
            {"accuracy": 0.0, "latency_ms": 1.0},
            "nan_metric: the score 'log(accuracy) + latency_ms' cannot be computed: ",
            id="domain",
        ),
        pytest.param(
            "accuracy * latency_ms",
            {"accuracy": 1e200, "latency_ms": 1e200},
            "nan_metric: the score 'accuracy * latency_ms' cannot be computed: arithmetic overflow",
            id="overflow",
        ),
        pytest.param(
            "accuracy / latency_ms",
            {"accuracy": 1.0, "latency_ms": 0},
            "nan_metric: the score 'accuracy / latency_ms' cannot be computed: ",
            id="division-by-zero",
        ),
    ],
)
def test_a_score_that_is_not_a_finite_number_fails_the_trial(
    score: str, metrics: dict[str, Any], error: str
) -> None:
    plan = compile_search(_spec(TEXT.replace('"0.7 * accuracy - 0.003 * latency_ms"', repr(score))))
    result = plan.final_values(dict(metrics))
    assert isinstance(result, str) and result.startswith(error), result
    assert plan.score is not None and plan.score.of(metrics) is None  # nor seen in a report


def test_stop_trial_and_target_go_by_the_score() -> None:
    spec = _spec()
    rule = stop_rule(spec)
    assert set(rule.thresholds) == {("score", ">=", 0.6), ("latency_ms", ">", 100.0)}
    assert rule.reached({"score": 0.61}) and not rule.reached({"score": 0.59})
    assert rule.reached({"latency_ms": 101}) and not rule.reached({"accuracy": 0.99})
    target = spec.stop.sweep.target or {}
    directions = spec.objective.directions
    assert target_reached({"score": 0.66, "accuracy": 0.1}, target, directions)
    assert not target_reached({"score": 0.64, "accuracy": 1.0}, target, directions)


def test_stop_trial_on_a_minimised_score_is_reached_below() -> None:
    spec = _spec(TEXT.replace("mode: max", "mode: min"))
    assert ("score", "<=", 0.6) in stop_rule(spec).thresholds


def test_the_best_trial_is_the_best_score() -> None:
    spec = _spec()
    records = [
        TrialRecord("0", "COMPLETE", {"accuracy": 0.99, "latency_ms": 100.0, "score": 0.393}),
        TrialRecord("1", "COMPLETE", {"accuracy": 0.9, "latency_ms": 1.0, "score": 0.627}),
        TrialRecord("2", "PRUNED", {"accuracy": 0.95, "latency_ms": 0.0, "score": 0.665}),
    ]
    assert [r.trial_id for r in best_trials(records, spec.objective.directions)] == ["1"]


def test_warm_start_scores_old_trials_afresh(plan: SearchPlan) -> None:
    from sweepspec.search.warm_start import warm_trials

    records = [
        TrialRecord("0", "COMPLETE", {"accuracy": 0.9, "latency_ms": 10.0}, {"x": 0.5}),
        TrialRecord(
            "1", "COMPLETE", {"accuracy": 0.9, "latency_ms": 0.0, "score": 9.0}, {"x": 0.2}
        ),
        TrialRecord("2", "COMPLETE", {"accuracy": 0.9}, {"x": 0.1}),  # no score to be had
        TrialRecord("3", "FAILED", {"accuracy": 0.9, "latency_ms": 0.0}, {"x": 0.3}),
    ]
    assert warm_trials(plan, records) == [
        ({"x": 0.5}, [pytest.approx(0.6)]),
        ({"x": 0.2}, [pytest.approx(0.63)]),  # an old score under another formula is not used
    ]
