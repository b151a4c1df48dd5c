"""A spec's files as they are at a git revision: the revision's YAML files under the spec's
directory and the current one, laid out in a temporary mirror that is gone afterwards."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.spec.revision import files_at_revision
from tests.conftest import unavailable


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """sweeps/a.yaml and sweeps/_base.yaml committed, then both changed; a text file beside
    them and YAML files in two other directories committed too."""
    if shutil.which("git") is None:
        unavailable("git is not installed")
    _git(tmp_path, "init", "-q")
    (tmp_path / "sweeps").mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "sweeps" / "a.yaml").write_text("old: a\n")
    (tmp_path / "sweeps" / "_base.yaml").write_text("old: base\n")
    (tmp_path / "sweeps" / "notes.txt").write_text("not yaml\n")
    (tmp_path / "other" / "x.yml").write_text("elsewhere\n")
    (tmp_path / "far").mkdir()
    (tmp_path / "far" / "y.yaml").write_text("far: away\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "base")
    (tmp_path / "sweeps" / "a.yaml").write_text("new: a\n")
    (tmp_path / "sweeps" / "_base.yaml").write_text("new: base\n")
    return tmp_path


def test_the_spec_and_its_bases_as_they_are_at_the_revision(repo: Path) -> None:
    with files_at_revision(Path("sweeps/a.yaml"), "HEAD") as (file, label):
        assert label == "HEAD:sweeps/a.yaml"
        assert file is not None and file.read_text() == "old: a\n"
        root = file.parents[1]
        assert Path.cwd() == root  # the mirror of the current directory (the repository's top)
        assert (root / "sweeps" / "_base.yaml").read_text() == "old: base\n"
        assert not (root / "sweeps" / "notes.txt").exists()  # YAML files only
        assert (root / "other" / "x.yml").read_text() == "elsewhere\n"  # under the current one
    assert Path.cwd() == repo and not root.exists()


def test_from_another_directory_the_mirror_holds_it_too(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(repo / "other")
    with files_at_revision(repo / "sweeps" / "a.yaml", "HEAD") as (file, label):
        assert label == "HEAD:sweeps/a.yaml" and file is not None
        assert Path.cwd() == file.parents[1] / "other"
        assert (Path.cwd() / "x.yml").read_text() == "elsewhere\n"
        assert not (file.parents[1] / "far").exists()  # not the spec's, not the current one


def test_a_file_that_is_not_at_the_revision(repo: Path) -> None:
    (repo / "sweeps" / "b.yaml").write_text("new: b\n")
    with files_at_revision(Path("sweeps/b.yaml"), "HEAD") as (file, label):
        assert (file, label) == (None, "HEAD:sweeps/b.yaml")
        assert Path.cwd() == repo


@pytest.mark.parametrize(
    ("rev", "message", "exit_code"),
    [
        ("no-such-branch", "git: unknown revision 'no-such-branch'", 1),
        ("--output=x", "--rev takes a git revision, but got '--output=x'", 2),
    ],
)
def test_a_revision_that_is_not_one(repo: Path, rev: str, message: str, exit_code: int) -> None:
    with pytest.raises(SweepspecError) as info, files_at_revision(Path("sweeps/a.yaml"), rev):
        pytest.fail("no files at a revision that is not one")
    assert str(info.value) == message and info.value.exit_code == exit_code
