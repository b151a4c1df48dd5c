"""The spec comparison ``diff`` shows: the space parameter by parameter, other keys one by one,
budget keys as a factor, the total trials when grid points multiply them."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from sweepspec.load import LoadedSpec, load_text
from sweepspec.search.diff import Change, diff_specs, show
from tests.builders import spec


def _loaded(**sections: Any) -> LoadedSpec:
    text = yaml.safe_dump(spec("d", **sections), sort_keys=False)
    return load_text(text, "spec.yaml", feasibility=False)


def _space(**params: Any) -> dict[str, Any]:
    return {"space": {"x": {"uniform": [-1.0, 1.0]}, **params}}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        pytest.param(_space(), _space(), [], id="same"),
        pytest.param(
            {"space": {"x": {"uniform": [-1.0, 1.0]}}},
            {"space": {"x": {"uniform": [-2.0, 1.0]}}},
            [Change("space.x.uniform", [-1.0, 1.0], [-2.0, 1.0], "widened")],
            id="widened",
        ),
        pytest.param(
            {"space": {"k": {"int": [1, 8]}}},
            {"space": {"k": {"int": [2, 4]}}},
            [Change("space.k.int", [1, 8], [2, 4], "narrowed")],
            id="narrowed",
        ),
        pytest.param(
            {"space": {"x": {"uniform": [0.0, 1.0]}}},
            {"space": {"x": {"uniform": [0.5, 2.0]}}},
            [Change("space.x.uniform", [0.0, 1.0], [0.5, 2.0], "shifted")],
            id="shifted",
        ),
        pytest.param(
            _space(opt={"choice": ["adam", "sgd"]}),
            _space(opt={"choice": ["adam", "rmsprop"]}),
            [
                Change(
                    "space.opt.choice",
                    ["adam", "sgd"],
                    ["adam", "rmsprop"],
                    'added "rmsprop"; dropped "sgd"',
                )
            ],
            id="choices",
        ),
        pytest.param(
            _space(opt={"choice": ["adam", "sgd"]}),
            _space(opt={"choice": ["sgd", "adam"]}),
            [Change("space.opt.choice", ["adam", "sgd"], ["sgd", "adam"], "reordered")],
            id="reordered",
        ),
        pytest.param(
            _space(seed=0),
            _space(lr={"loguniform": [1e-4, 1e-1]}),
            [
                Change("space.seed", 0, None),
                Change("space.lr", None, {"loguniform": [0.0001, 0.1]}),
            ],
            id="removed-added",
        ),
        pytest.param(
            _space(k={"int": [1, 4]}),
            _space(k={"choice": [1, 2]}),
            [Change("space.k", {"int": [1, 4]}, {"choice": [1, 2]}, "int -> choice")],
            id="kind",
        ),
        pytest.param(
            _space(), {**_space(), "trials": {"num_samples": 16}},
            [Change("trials.num_samples", 4, 16, "x4")],
            id="budget-factor",
        ),
        pytest.param(
            _space(), {**_space(), "searcher": {"seed": 3}},
            [Change("searcher.seed", 0, 3)],
            id="key",
        ),
        pytest.param(
            _space(g={"grid": [1, 2]}),
            _space(g={"grid": [1, 2, 3]}),
            [
                Change("space.g.grid", [1, 2], [1, 2, 3], "added 3"),
                Change("total trials", 8, 12, "x1.5"),
            ],
            id="grid-total",
        ),
    ],
)  # fmt: skip
def test_diff_specs(before: dict[str, Any], after: dict[str, Any], expected: list[Change]) -> None:
    assert diff_specs(_loaded(**before), _loaded(**after)) == expected


def test_a_change_knows_its_group_and_its_line() -> None:
    widened = Change("space.x.uniform", [-1.0, 1.0], [-2.0, 1.0], "widened")
    assert widened.group == "space"
    assert widened.text() == "space.x.uniform: [-1.0, 1.0] -> [-2.0, 1.0] (widened)"
    assert Change("trials.num_samples", 4, 16, "x4").group == "budget"
    assert Change("total trials", 4, 8).group == "budget"
    assert Change("searcher.seed", 0, 1).group == "search"
    assert Change("name", "a", "b").group == "other"
    assert Change("space.lr", None, {"loguniform": [0.1, 1]}).text() == (
        'space.lr: added {"loguniform": [0.1, 1]}'
    )
    assert Change("space.seed", 0, None).text() == "space.seed: removed (was 0)"
    assert show({"a": [1, "b"]}) == '{"a": [1, "b"]}'
