"""The configs ``plan`` previews: ``try_first`` ones first (what they leave out sampled), then
seeded random samples, each with the constraints it breaks."""

from __future__ import annotations

from typing import Any

import yaml

from sweepspec.load import load_text
from sweepspec.search.preview import MAX_TRY_FIRST, PREVIEW, preview_configs
from sweepspec.spec.root import Spec
from tests.builders import spec


def _spec(**sections: Any) -> Spec:
    text = yaml.safe_dump(spec("p", **sections), sort_keys=False)
    return load_text(text, "spec.yaml", feasibility=False).spec


SPACE = {
    "x": {"uniform": [-1.0, 1.0]},
    "y": {"uniform": [-1.0, 1.0]},
    "opt": {"choice": ["adam", "sgd"]},
    "momentum": {"uniform": [0.0, 0.9], "when": "opt == 'sgd'"},
    "layers": 3,
}


def test_try_first_then_samples_each_with_what_it_breaks() -> None:
    s = _spec(
        space=SPACE,
        constraints=["x < y"],
        try_first=[{"x": -0.5, "y": 0.5, "opt": "sgd"}, {"x": -1.0, "opt": "adam"}],
    )
    rows = preview_configs(s)
    assert [r["source"] for r in rows] == ["try_first"] * 2 + ["sample"] * PREVIEW
    first, second = rows[0], rows[1]
    assert first["params"]["x"] == -0.5 and "momentum" in first["params"]  # sampled for it
    assert first["feasible"] is True and first["violated"] == []
    assert list(second["params"]) == ["x", "y", "opt"]  # y sampled, momentum inactive
    assert second["config"] == {**second["params"], "layers": 3}
    assert any(r["violated"] == [0] for r in rows), "seed 0 samples an infeasible config"
    for r in rows:
        assert "layers" not in r["params"]  # a fixed leaf is in the config, not sampled
        assert ("momentum" in r["params"]) is (r["params"]["opt"] == "sgd")
        assert r["feasible"] is (r["params"]["x"] < r["params"]["y"])


def test_the_preview_is_seeded_and_try_first_is_capped() -> None:
    s = _spec(space=SPACE, try_first=[{"x": i / 100} for i in range(MAX_TRY_FIRST + 5)])
    rows = preview_configs(s, samples=2)
    assert len(rows) == MAX_TRY_FIRST + 2
    assert rows == preview_configs(s, samples=2)  # the searcher's seed (0)
    other = _spec(space=SPACE, searcher={"seed": 7})
    assert preview_configs(other) != preview_configs(_spec(space=SPACE))
