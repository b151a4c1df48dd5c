"""``objective.score``: the spelling (``metrics: [names]`` + ``score`` + ``mode``), what it
optimises (``directions``), and the problems validate reports about it, located."""

from __future__ import annotations

import textwrap

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.load import load_text
from sweepspec.spec.objective import SCORE

SPACE = "space:\n  x: {uniform: [0.0, 1.0]}\n"


def _load(objective: str, extra: str = "") -> object:
    text = "sweepspec: 1\nname: s\nobjective:\n" + textwrap.indent(textwrap.dedent(objective), "  ")
    return load_text(text + SPACE + textwrap.dedent(extra), "spec.yaml", feasibility=False)


def _problems(objective: str, extra: str = "") -> list[str]:
    with pytest.raises(SweepspecError) as info:
        _load(objective, extra)
    return [f"{p.path}: {p.message}" for p in info.value.problems]


OK = """\
function: m:f
metrics: [accuracy, latency_ms]
score: "0.7 * accuracy - 0.003 * latency_ms"
mode: max
"""


def test_a_score_is_the_one_optimised_value() -> None:
    objective = _load(OK).spec.objective  # type: ignore[attr-defined]
    assert objective.directions == {SCORE: "max"}
    assert objective.score_metrics == ["accuracy", "latency_ms"]
    assert not objective.is_multi
    assert objective.primary() == ("score", "max")
    assert objective.describe()["score"] == {
        "expression": "0.7 * accuracy - 0.003 * latency_ms",
        "metrics": ["accuracy", "latency_ms"],
    }


def test_without_a_score_nothing_changes() -> None:
    single = _load("function: m:f\nmetric: loss\nmode: min\n").spec.objective  # type: ignore[attr-defined]
    assert single.directions == {"loss": "min"} and single.score_metrics == []
    assert "score" not in single.describe()
    multi = _load("function: m:f\nmetrics: {a: max, b: min}\n").spec.objective  # type: ignore[attr-defined]
    assert multi.directions == {"a": "max", "b": "min"} and multi.is_multi


def test_a_metric_of_the_score_may_be_left_out_of_the_expression() -> None:
    spec = _load("function: m:f\nmetrics: [accuracy, val_loss]\nscore: accuracy\nmode: max\n")
    assert spec.spec.objective.score_metrics == ["accuracy", "val_loss"]  # type: ignore[attr-defined]


def test_stops_and_target_name_the_score() -> None:
    spec = _load(OK, "stop:\n  trial: {score: 0.9}\n  sweep: {target: {score: 0.95}}\n")
    assert spec.spec.stop.sweep.target == {"score": 0.95}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("objective", "extra", "expected"),
    [
        pytest.param(
            OK.replace("0.7 * accuracy - 0.003", "0.7 * accuracy - * 0.003"),
            "",
            ["objective.score: syntax error: invalid syntax (at column 18 of "
             "'0.7 * accuracy - * 0.003 * latency_ms')"],
            id="syntax",
        ),
        pytest.param(
            OK.replace("0.7 * accuracy", "0.7 * acuracy"),
            "",
            ["objective.score: the score refers to 'acuracy', which is not listed in "
             "objective.metrics (did you mean 'accuracy'?) (at column 7)"],
            id="unknown-name",
        ),
        pytest.param(
            OK.replace("[accuracy, latency_ms]", "{accuracy: max, latency_ms: min}"),
            "",
            ["objective.metrics: a score is one value, optimised in one direction (mode), but "
             "metrics gives 2 metrics with directions (multi-objective, a Pareto front); give "
             "either a score with metrics: [name, ...] and mode, or metrics: {name: max|min} "
             "alone"],
            id="multi-objective",
        ),
        pytest.param(
            OK.replace("[accuracy, latency_ms]", "{accuracy: max}"),
            "",
            ["objective.metrics: a score's metrics are listed without directions (metrics: "
             "[name, ...]); the score's direction is mode"],
            id="one-direction",
        ),
        pytest.param(
            OK.replace("mode: max\n", ""),
            "",
            ["objective: a score needs its direction: mode: max or min"],
            id="no-mode",
        ),
        pytest.param(
            OK.replace("metrics: [accuracy, latency_ms]\n", ""),
            "",
            ["objective: a score needs the metrics it is computed from: metrics: [name, ...]"],
            id="no-metrics",
        ),
        pytest.param(
            OK.replace("[accuracy, latency_ms]", "[]"),
            "",
            ["objective.metrics: a score needs the metrics it is computed from"],
            id="empty-metrics",
        ),
        pytest.param(
            OK.replace("metrics: [accuracy, latency_ms]\n", "metric: accuracy\n"),
            "",
            ["objective.score: a score is computed from the metrics listed in metrics: "
             "[name, ...]; give metrics instead of metric"],
            id="with-metric",
        ),
        pytest.param(
            OK.replace("[accuracy, latency_ms]", "[accuracy, score]"),
            "",
            ["objective.metrics: 'score' is the name the score's value is recorded under; a "
             "metric of the score needs another name"],
            id="reserved",
        ),
        pytest.param(
            OK.replace("[accuracy, latency_ms]", "[accuracy, latency_ms, accuracy]"),
            "",
            ["objective.metrics: every metric is listed once, but got 'accuracy' twice"],
            id="twice",
        ),
        pytest.param(
            "function: m:f\nmetrics: [accuracy, latency_ms]\nmode: max\n",
            "",
            ["objective.metrics: a list of metrics names the metrics of a score: give score "
             "and mode too, or metrics: {name: max|min}"],
            id="list-without-score",
        ),
        pytest.param(
            OK.replace('"0.7 * accuracy - 0.003 * latency_ms"', '"accuracy > 0.9"'),
            "",
            ["objective.score: the score must be a number, but 'accuracy > 0.9' gives a bool"],
            id="not-a-number",
        ),
        pytest.param(
            OK,
            "stop:\n  sweep: {target: {accuracy: 0.9}}\n",
            ["stop.sweep.target.accuracy: target names 'accuracy', which is not an optimised "
             "metric (with objective.score, the target is on 'score')"],
            id="target-on-a-metric",
        ),
        pytest.param(
            OK,
            "scheduler: {type: asha, time_attr: score}\n",
            ["scheduler.time_attr: time_attr 'score' is the optimised metric; it must be a "
             "progress counter such as training_iteration"],
            id="time-attr",
        ),
    ],
)  # fmt: skip
def test_problems(objective: str, extra: str, expected: list[str]) -> None:
    assert _problems(objective, extra) == expected


def test_a_score_that_fails_at_one_point_is_not_refused() -> None:
    """``log(accuracy - 1)`` fails where every metric is 1, which says nothing of others."""
    _load(OK.replace('"0.7 * accuracy - 0.003 * latency_ms"', '"log(accuracy - 1) + latency_ms"'))


def test_a_score_works_with_any_scheduler_and_single_objective_searcher() -> None:
    _load(OK, "searcher: {type: hyperopt}\nscheduler: {type: median}\n")
