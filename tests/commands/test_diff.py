"""``sweepspec diff``: two files, or a spec against its version at a git revision (its
``extends:`` base read at that revision too); text, github (Markdown) and JSON; the budget as
a factor; what the new spec's existing run would do; ``--exit-code``."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from sweepspec.cli import main
from tests.builders import run_ok, spec, write_spec
from tests.conftest import unavailable

Capsys = pytest.CaptureFixture[str]

BASE = {
    "sweepspec": 1,
    "objective": {"function": "sweepspec_examples.toy:quadratic", "metric": "loss", "mode": "min"},
    "searcher": {"type": "random", "seed": 0},
    "trials": {"num_samples": 12},
}
SPEC = {
    "extends": "_base.yaml",
    "name": "pr",
    "space": {
        "x": {"uniform": [-1.0, 1.0]},
        "y": {"int": [1, 8]},
        "opt": {"choice": ["adam", "sgd"]},
        "seed": 0,
    },
}


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _dump(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository with sweeps/pr.yaml extending sweeps/_base.yaml, committed, then
    changed in the working tree: the base's num_samples x4, x widened, y narrowed, a choice
    added, a parameter removed and one added."""
    if shutil.which("git") is None:
        unavailable("git is not installed")
    _git(tmp_path, "init", "-q")
    sweeps = tmp_path / "sweeps"
    _dump(sweeps / "_base.yaml", BASE)
    _dump(sweeps / "pr.yaml", SPEC)
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "base")
    _dump(sweeps / "_base.yaml", {**BASE, "trials": {"num_samples": 48}})
    space = {
        "x": {"uniform": [-2.0, 1.0]},
        "y": {"int": [2, 4]},
        "opt": {"choice": ["adam", "sgd", "rmsprop"]},
        "lr": {"loguniform": [1e-4, 1e-1]},
    }
    _dump(sweeps / "pr.yaml", {**SPEC, "space": space})
    return tmp_path


def test_diff_rev_compares_with_the_revision_and_its_base(repo: Path, capsys: Capsys) -> None:
    assert main(["diff", "--rev", "HEAD", "sweeps/pr.yaml"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[:8] == [
        "space:",
        "  space.x.uniform: [-1.0, 1.0] -> [-2.0, 1.0] (widened)",
        "  space.y.int: [1, 8] -> [2, 4] (narrowed)",
        '  space.opt.choice: ["adam", "sgd"] -> ["adam", "sgd", "rmsprop"] (added "rmsprop")',
        "  space.seed: removed (was 0)",
        '  space.lr: added {"loguniform": [0.0001, 0.1]}',
        "budget:",
        "  trials.num_samples: 12 -> 48 (x4)",
    ]
    assert "a run of A cannot resume as B: space changed" in out
    assert "no run at" in out and "starts a new one" in out
    # from the spec's directory: paths are the repository's, whatever the current directory
    sub = repo / "sweeps"
    assert main(["diff", "--rev", "HEAD", str(sub / "pr.yaml"), "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["a"] == "HEAD:sweeps/pr.yaml" and data["changed"] is True
    assert data["resumable"] is False and data["incompatible"] == ["space"]
    by_path = {c["path"]: c for c in data["changes"]}
    assert by_path["trials.num_samples"] == {
        "path": "trials.num_samples", "before": 12, "after": 48, "note": "x4", "group": "budget"
    }  # fmt: skip
    assert by_path["space.y.int"]["note"] == "narrowed"
    assert by_path["space.lr"]["before"] is None and by_path["space.seed"]["after"] is None
    assert data["run"]["verdict"] == "new"


def test_diff_rev_github_is_markdown_and_exit_code_tells_a_difference(
    repo: Path, capsys: Capsys
) -> None:
    code = main(["diff", "--rev", "HEAD", "sweeps/pr.yaml", "--format", "github", "--exit-code"])
    assert code == 1
    out = capsys.readouterr().out
    assert out.startswith("Compared with `HEAD:sweeps/pr.yaml`:\n")
    assert "| | key | before | after | |\n| --- | --- | --- | --- | --- |\n" in out
    assert "| space | `space.x.uniform` | `[-1.0, 1.0]` | `[-2.0, 1.0]` | widened |" in out
    assert "| budget | `trials.num_samples` | `12` | `48` | x4 |" in out
    assert "**A run of the old spec cannot resume as this one** (space changed)." in out
    _git(repo, "commit", "-qam", "change")
    assert main(["diff", "--rev", "HEAD", "sweeps/pr.yaml", "--exit-code"]) == 0
    assert capsys.readouterr().out.startswith("no changes\n")
    assert main(["diff", "--rev", "HEAD~1", "sweeps/pr.yaml", "--exit-code"]) == 1


def test_diff_rev_of_a_new_file_and_of_an_unknown_revision(repo: Path, capsys: Capsys) -> None:
    shutil.copy(repo / "sweeps" / "pr.yaml", repo / "sweeps" / "new.yaml")
    assert main(["diff", "--rev", "HEAD", "sweeps/new.yaml", "--exit-code"]) == 1
    assert capsys.readouterr().out == "sweeps/new.yaml is new: it does not exist at HEAD\n"
    assert main(["diff", "--rev", "no-such-branch", "sweeps/pr.yaml"]) == 1
    err = capsys.readouterr().err
    assert "git: unknown revision 'no-such-branch'" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "argv",
    [["diff", "a.yaml"], ["diff", "--rev", "HEAD", "a.yaml", "b.yaml"]],
    ids=["one-spec-without-rev", "two-specs-with-rev"],
)
def test_diff_usage_errors_exit_2(tmp_path: Path, argv: list[str], capsys: Capsys) -> None:
    write_spec(tmp_path, spec("a"), "a.yaml")
    write_spec(tmp_path, spec("a"), "b.yaml")
    assert main(argv) == 2
    assert "diff" in capsys.readouterr().err


def test_diff_says_what_the_existing_run_would_do(tmp_path: Path, capsys: Capsys) -> None:
    write_spec(tmp_path, spec("r"))
    run_ok(tmp_path)
    cases = {
        "same.yaml": (spec("r"), "would resume (4 trials)"),
        "more.yaml": (spec("r", trials={"num_samples": 12}), "would be extended (4 -> 12 trials)"),
        "space.yaml": (
            spec("r", space={"x": {"uniform": [0.0, 1.0]}}),
            "would be refused (space changed): run with --fresh (start over) or --warm-start",
        ),
        "other.yaml": (spec("r", "ray"), "would be refused (backend optuna -> ray changed)"),
    }
    for file, (data, said) in cases.items():
        write_spec(tmp_path, data, file)
        assert main(["diff", "spec.yaml", file]) == 0
        out = capsys.readouterr().out
        assert said in out, (file, out)
    assert main(["diff", "spec.yaml", "more.yaml", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["run"]["verdict"] == "extend" and data["run"]["trials"] == [4, 12]
    assert data["resumable"] is True
    assert data["changes"][0]["note"] == "x3"
