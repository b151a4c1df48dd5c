"""feasible_share / check_feasibility: the seeded sample of the space behind `validate`."""

from __future__ import annotations

import json

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.load import load_text
from sweepspec.search.feasibility import SAMPLES, check_feasibility, feasible_share
from sweepspec.spec.root import Spec
from sweepspec.spec.source import SourceMap

HEAD = """\
sweepspec: 1
objective:
  function: train:main
  metric: loss
  mode: min
space:
  x: {uniform: [0.0, 1.0]}
  y: {uniform: [0.0, 1.0]}
  opt: {choice: [adam, sgd]}
  m: {uniform: [0.0, 1.0], when: "opt == 'sgd'"}
"""


def spec(constraints: list[str], extra: str = "") -> Spec:
    body = "constraints:\n" + "".join(f"  - {c!r}\n" for c in constraints) if constraints else ""
    return load_text(HEAD + extra + body, "f.yaml", feasibility=False).spec


def test_half_of_uniform_satisfies_x_below_half() -> None:
    share, each = feasible_share(spec(["x <= 0.5"]))
    assert 0.45 < share < 0.55
    assert each == [share]


def test_share_is_deterministic_for_a_seed() -> None:
    s = spec(["x <= 0.5", "x + y <= 1"])
    assert feasible_share(s, seed=7) == feasible_share(s, seed=7)
    assert feasible_share(s, seed=7) != feasible_share(s, seed=8)
    assert feasible_share(s) == feasible_share(s, seed=0)


def test_each_constraint_and_all_together() -> None:
    share, each = feasible_share(spec(["x <= 0.5", "y <= 0.5"]), samples=4000)
    assert 0.45 < each[0] < 0.55 and 0.45 < each[1] < 0.55
    assert 0.2 < share < 0.3  # independent: about a quarter


def test_constraint_on_an_inactive_parameter_holds() -> None:
    # m exists only under sgd (half the samples); under adam the constraint does not apply
    share, _ = feasible_share(spec(["m > 2"]))
    assert 0.45 < share < 0.55


def test_samples_argument() -> None:
    share, _ = feasible_share(spec(["x <= 0.5"]), samples=10)
    assert share * 10 == int(share * 10)


def test_check_feasibility_returns_share_or_none() -> None:
    source = SourceMap("f.yaml")
    assert check_feasibility(spec([]), source) is None
    share = check_feasibility(spec(["x <= 0.5"]), source)
    assert share is not None and 0.45 < share < 0.55


def test_zero_share_is_an_error_at_the_tightest_constraint() -> None:
    text = HEAD + "constraints:\n  - x <= 0.9\n  - x + y > 5\n  - y >= 0\n"
    with pytest.raises(SweepspecError) as info:
        load_text(text, "f.yaml")
    (problem,) = info.value.problems
    assert problem.code == "infeasible"
    assert problem.path == "constraints.1"
    assert (problem.location.file, problem.location.line, problem.location.col) == ("f.yaml", 13, 5)
    assert f"0 of {SAMPLES}" in problem.message
    assert "#1: 0%" in problem.message and "constraint #1 is the tightest" in problem.message


def test_validate_reports_the_share() -> None:
    loaded = load_text(HEAD + "constraints: [x <= 0.5]\n", "f.yaml")
    assert loaded.feasible_share is not None and 0.45 < loaded.feasible_share < 0.55
    assert load_text(HEAD + "constraints: [x <= 0.5]\n", "f.yaml", feasibility=False) \
        .feasible_share is None  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "path", "line"),
    [
        ("constraints:\n  - x >= 0\n  - opt > 1\n", "constraints.1", 13),
        ("derived:\n  d: opt * 2.5\n", "derived.d", 12),
        ("  z: {uniform: [0, 1], when: 'opt + 1 > 0'}\n", "space.z.when", 11),
    ],
    ids=["constraint", "derived", "when"],
)
def test_expression_that_cannot_be_evaluated_is_located(extra: str, path: str, line: int) -> None:
    with pytest.raises(SweepspecError) as info:
        load_text(HEAD + extra, "f.yaml")
    (problem,) = info.value.problems
    assert problem.code == "expression"
    assert problem.path == path
    assert problem.location.line == line
    assert problem.message.startswith("cannot be evaluated: ")


def test_only_what_an_expression_can_see_is_sampled() -> None:
    from sweepspec.search.feasibility import _relevant_part
    from sweepspec.search.space import SpaceModel

    text = """\
sweepspec: 1
objective: {function: train:main, metric: loss, mode: min}
space:
  a: {uniform: [0.0, 1.0]}
  b: {uniform: [0.0, 1.0], when: "a > 0.5"}
  unused: {uniform: [0.0, 1.0]}
  group: {deep: {int: [1, 4]}}
derived:
  d: "b * 2"
constraints: ["d < 1"]
"""
    s = load_text(text, "f.yaml", feasibility=False).spec
    kept = [p.path for p in _relevant_part(SpaceModel.from_spec(s)).params]
    assert sorted(kept) == ["a", "b"]
    # b (so d) exists only when a > 0.5, then d < 1 half the time: 0.5 + 0.5 * 0.5
    share, _ = feasible_share(s)
    assert 0.70 < share < 0.80


def test_sampling_is_bounded_by_work_not_time() -> None:
    """Many long constraints: fewer samples (the same on any machine), still a share."""
    from sweepspec.search.feasibility import MIN_SAMPLES, WORK, _relevant_part, samples_for
    from sweepspec.search.space import SpaceModel

    terms = " + ".join(f"x{i % 5}" for i in range(150))
    constraints = [f"{terms} >= -{j}" for j in range(100)]
    space = ", ".join(f"x{i}: {{uniform: [0, 1]}}" for i in range(5))
    text = (
        "sweepspec: 1\nobjective: {function: m:f, metric: loss, mode: min}\n"
        f"space: {{{space}}}\nconstraints: {json.dumps(constraints)}\n"
    )
    spec = load_text(text, "s.yaml", feasibility=False).spec
    model = _relevant_part(SpaceModel.from_spec(spec))
    n = samples_for(model)
    cost = sum(e.size for e in model.constraints)
    assert MIN_SAMPLES <= n < SAMPLES and n * cost <= max(WORK, MIN_SAMPLES * cost)
    assert feasible_share(spec) == feasible_share(spec)  # deterministic
    assert feasible_share(spec)[0] == 1.0
