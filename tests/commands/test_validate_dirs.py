"""``sweepspec validate`` over directories, and ``--changed`` (the pre-commit hook's mode).

Walking a directory, what cannot be read is reported, located at its path, and fails the run:
a directory that cannot be listed (tested as another user, since root reads everything), a
broken or looping link, a YAML name on a FIFO, a socket or a device (never read). With
``--changed`` only sweep specs are checked, and a changed base gets the specs that extend it
checked. The last test runs the hooks with the real pre-commit in a throwaway repository.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sweepspec.cli import main
from tests.conftest import unavailable

REPO = Path(__file__).resolve().parents[2]
SPEC = """\
sweepspec: 1
objective: {function: train:main, metric: loss, mode: min}
space:
  lr: {loguniform: [1.0e-5, 1.0e-1]}
"""
Capsys = pytest.CaptureFixture[str]


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def validate(capsys: Capsys, *args: str) -> tuple[int, str, str]:
    code = main(["validate", *args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def specs(tmp_path: Path) -> Path:
    write(tmp_path / "specs" / "ok.yaml", SPEC)
    return tmp_path / "specs"


# ----------------------------------------------------------------------------- unreadable


def _as_another_user(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``sweepspec validate ARGS`` in ``tmp_path`` as a user whom permissions stop: this one,
    or ``nobody`` when this is root (root reads any directory whatever its mode)."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            unavailable("as root, needs setpriv (util-linux) to check as another user")
        prefix = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups"]
        tmp_path.chmod(0o755)  # the other user works in it
    return subprocess.run(
        [*prefix, sys.executable, "-m", "sweepspec", "validate", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def locked(specs: Path) -> Iterator[Path]:
    """``specs/private``: a directory nobody but its owner may list (a spec inside)."""
    private = specs / "private"
    write(private / "hidden.yaml", SPEC + "colour: red\n")
    specs.chmod(0o755)
    private.chmod(0o000)
    yield private
    private.chmod(0o755)


def test_unreadable_subdirectory_is_reported(tmp_path: Path, locked: Path) -> None:
    done = _as_another_user(tmp_path, "specs")
    assert done.returncode == 1, done.stderr
    assert done.stdout == "specs/private: cannot list this directory: Permission denied\n"
    assert done.stderr == "1 spec(s) checked, 0 with errors, 1 path(s) that could not be read\n"


def test_unreadable_directory_given_is_reported(tmp_path: Path, locked: Path) -> None:
    done = _as_another_user(tmp_path, "specs/private", "specs/private/hidden.yaml")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "specs/private: cannot list this directory: Permission denied",
        "specs/private/hidden.yaml: cannot read: Permission denied",
    ]
    assert "Traceback" not in done.stderr


def test_unreadable_directory_as_json(tmp_path: Path, locked: Path) -> None:
    done = _as_another_user(tmp_path, "--format", "json", "specs")
    assert done.returncode == 1
    assert json.loads(done.stdout) == [
        {
            "file": "specs/private",
            "line": None,
            "col": None,
            "path": "",
            "code": "unreadable",
            "message": "cannot list this directory: Permission denied",
        }
    ]


def test_special_files_are_reported_never_read(specs: Path, capsys: Capsys) -> None:
    os.mkfifo(specs / "pipe.yaml")  # opened for reading, it would block
    (specs / "zero.yml").symlink_to("/dev/zero")  # read, it would never end
    server = socket.socket(socket.AF_UNIX)
    server.bind("specs/socket.yaml")  # relative: a socket path is short
    (specs / "gone").symlink_to("no-such-directory")
    (specs / "loop.yaml").symlink_to("loop.yaml")
    os.mkfifo(specs / "notes")  # not YAML: not a spec, not reported
    try:
        code, out, err = validate(capsys, "specs")
    finally:
        server.close()
    assert code == 1
    assert out.splitlines() == [
        "specs/gone: a broken symbolic link",
        "specs/loop.yaml: cannot read: Too many levels of symbolic links",
        "specs/pipe.yaml: is a FIFO (named pipe), not a regular file: not read",
        "specs/socket.yaml: is a socket, not a regular file: not read",
        "specs/zero.yml: is a character device, not a regular file: not read",
    ]
    assert err == "1 spec(s) checked, 0 with errors, 5 path(s) that could not be read\n"


def test_paths_given_that_cannot_be_read(specs: Path, capsys: Capsys) -> None:
    os.mkfifo(specs / "pipe")  # a FIFO where a directory is expected
    (specs / "gone").symlink_to("no-such-directory")
    code, out, _ = validate(capsys, "specs/pipe", "specs/gone", "specs/ok.yaml/deeper")
    assert code == 1
    lines = out.splitlines()
    assert lines[0] == "specs/gone: a broken symbolic link"
    assert lines[1].startswith("specs/ok.yaml/deeper: cannot read: Not a directory")
    assert lines[2].startswith("specs/pipe: is a FIFO")


def test_linked_directories_are_walked_once(specs: Path, capsys: Capsys) -> None:
    write(specs / "sub" / "deeper.yaml", SPEC)
    (specs / "sub" / "up").symlink_to("..")  # a cycle
    (specs / "again").symlink_to("sub")
    code, out, err = validate(capsys, "specs")
    assert (code, out, err) == (0, "", "2 spec(s) valid\n")


def test_a_base_error_is_reported_once(specs: Path, capsys: Capsys) -> None:
    write(specs / "_base.yaml", SPEC + "trials: {num_samples: 0}\n")
    for name in ("a", "b"):
        write(specs / f"{name}.yaml", "extends: _base.yaml\n")
    code, out, _ = validate(capsys, "specs")
    assert code == 1
    assert out.count("trials.num_samples") == 1, out


# ----------------------------------------------------------------------------- --changed


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An ordinary repository (the current directory): a workflow, pre-commit's own
    configuration, a CloudFormation file (tags), two YAML documents in one file, a spec, bases
    (one reached through another, in a subdirectory; one not named with `_`)."""
    tmp_path = tmp_path / "project"
    tmp_path.mkdir()
    monkeypatch.chdir(tmp_path)
    write(tmp_path / ".github/workflows/ci.yml", "name: ci\non: [push]\njobs: {}\n")
    write(tmp_path / ".pre-commit-config.yaml", "repos: []\n")
    write(tmp_path / "stack.yaml", "Resources:\n  B: {Type: 'AWS::S3::Bucket', Name: !Ref N}\n")
    write(tmp_path / "k8s.yaml", "kind: A\n---\nkind: B\n")
    write(tmp_path / ".eslintrc.yml", "extends: eslint:recommended\nrules: {}\n")
    write(tmp_path / "README", "not YAML\n")
    write(tmp_path / "sweeps/_base.yaml", SPEC)
    write(tmp_path / "sweeps/a.yaml", "extends: _base.yaml\ntrials: {num_samples: 3}\n")
    write(tmp_path / "sweeps/exp/_mid.yaml", "extends: ../_base.yaml\ntrials: {num_samples: 4}\n")
    write(tmp_path / "sweeps/exp/b.yaml", "extends: '_mid.yaml'  # the chain\n")
    write(tmp_path / "sweeps/common.yaml", "objective: {metric: loss, mode: min}\n")
    write(tmp_path / "sweeps/c.yaml", f"extends: common.yaml\n{SPEC}")
    write(tmp_path / "sweeps/flow.yaml", "{sweepspec: 1, objective: {function: m:f}}\n")
    return tmp_path


NOT_SPECS = [".github/workflows/ci.yml", ".pre-commit-config.yaml", "stack.yaml", "k8s.yaml"]


def test_changed_files_that_are_not_specs_pass(project: Path, capsys: Capsys) -> None:
    code, out, err = validate(capsys, "--changed", *NOT_SPECS, ".eslintrc.yml", "README")
    assert (code, out) == (0, "")
    assert err == "no sweep specs among the 6 file(s)\n"


def test_changed_spec_is_checked(project: Path, capsys: Capsys) -> None:
    write(project / "sweeps/a.yaml", "extends: _base.yaml\ntrials: {num_smaples: 3}\n")
    code, out, err = validate(capsys, "--changed", "sweeps/a.yaml", *NOT_SPECS)
    assert code == 1
    assert out.startswith("sweeps/a.yaml:2:10: trials.num_smaples: unknown key 'num_smaples'")
    assert err == "1 spec(s) checked, 1 with errors (4 file(s) that are not sweep specs skipped)\n"


def test_changed_base_checks_the_specs_that_extend_it(project: Path, capsys: Capsys) -> None:
    assert validate(capsys, "--changed", "sweeps/_base.yaml") == (0, "", "2 spec(s) valid\n")
    write(project / "sweeps/_base.yaml", SPEC.replace("loss", ""))
    code, out, err = validate(capsys, "--changed", "sweeps/_base.yaml")
    assert code == 1
    assert out.startswith("sweeps/_base.yaml:2:")
    assert out.count("\n") == 1  # the base's problem, once, though two specs extend it
    assert err == "2 spec(s) checked, 1 with errors\n"
    # a base in the middle of a chain: the spec at its end
    assert validate(capsys, "--changed", "sweeps/exp/_mid.yaml")[2] == (
        "1 spec(s) checked, 1 with errors\n"
    )


def test_changed_base_without_underscore(project: Path, capsys: Capsys) -> None:
    """A file a spec extends is a base, whatever its name: the spec is checked, not it."""
    assert validate(capsys, "--changed", "sweeps/common.yaml") == (0, "", "1 spec(s) valid\n")
    write(project / "sweeps/common.yaml", "objective: {metric: loss, mode: min}\ncolour: red\n")
    code, out, _ = validate(capsys, "--changed", "sweeps/common.yaml")
    assert code == 1
    assert out.startswith("sweeps/common.yaml:2:1: colour: unknown key")


def test_changed_spec_without_version(project: Path, capsys: Capsys) -> None:
    """Keys only a spec has, no version, and nothing extends it: a spec missing its version."""
    write(project / "sweeps/d.yaml", SPEC.replace("sweepspec: 1\n", ""))
    code, out, _ = validate(capsys, "--changed", "sweeps/d.yaml")
    assert code == 1
    assert "missing the format version" in out


def test_changed_flow_style_spec(project: Path, capsys: Capsys) -> None:
    code, out, _ = validate(capsys, "--changed", "sweeps/flow.yaml")
    assert code == 1
    assert out.startswith("sweeps/flow.yaml:1:")


def test_changed_directory_is_walked(project: Path, capsys: Capsys) -> None:
    code, _, err = validate(capsys, "--changed", "sweeps")
    assert code == 1  # flow.yaml
    assert err == "4 spec(s) checked, 1 with errors\n"


# ----------------------------------------------------------------------------- pre-commit


def _env(cache: Path) -> dict[str, str]:
    """git and pre-commit, writing nothing outside the test's directory."""
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.invalid",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.invalid",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "PRE_COMMIT_HOME": str(cache / "pre-commit"),
        "VIRTUALENV_OVERRIDE_APP_DATA": str(cache / "virtualenv"),
        "PIP_CACHE_DIR": str(cache / "pip"),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args],
        cwd=cwd,
        env=_env(cwd.parent / "cache"),  # beside the repository
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _hook_repository(where: Path) -> str:
    """This checkout's hooks and package (the working tree, committed in a throwaway clone):
    what `repo:` + `rev:` in another repository's configuration installs."""
    for name in ("pyproject.toml", "README.md", ".pre-commit-hooks.yaml"):
        shutil.copy(REPO / name, where / name)
    shutil.copytree(
        REPO / "sweepspec", where / "sweepspec", ignore=shutil.ignore_patterns("__pycache__")
    )
    assert _git(where, "init", "-q").returncode == 0
    assert _git(where, "add", "-A").returncode == 0
    assert _git(where, "commit", "-q", "-m", "hooks").returncode == 0
    return _git(where, "rev-parse", "HEAD").stdout.strip()


@pytest.mark.slow
def test_pre_commit_hooks(project: Path, tmp_path: Path) -> None:
    """Install the hooks from this checkout into a repository and commit: a workflow file
    commits; a change that breaks only a base is refused, naming the problem."""
    if shutil.which("git") is None:
        unavailable("needs git")
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    rev = _hook_repository(hooks)
    config = f"""\
repos:
  - repo: {hooks}
    rev: {rev}
    hooks:
      - id: sweepspec-validate
      - id: sweepspec-validate-dir
"""
    write(project / ".pre-commit-config.yaml", config)
    assert _git(project, "init", "-q").returncode == 0
    install = subprocess.run(
        [sys.executable, "-m", "pre_commit", "install"],
        cwd=project,
        env=_env(tmp_path / "cache"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    for name in ("flow.yaml", "common.yaml", "c.yaml"):  # invalid, or a base without `_`
        (project / "sweeps" / name).unlink()
    _git(project, "add", "-A")
    done = _git(project, "commit", "-q", "-m", "everything")
    assert done.returncode == 0, done.stderr

    write(project / ".github/workflows/ci.yml", "name: ci\non: [pull_request]\njobs: {}\n")
    _git(project, "add", "-A")
    done = _git(project, "commit", "-m", "a workflow")
    assert done.returncode == 0, done.stderr
    assert "sweepspec validate...." in done.stderr  # pre-commit's report, on stderr

    write(project / "sweeps/_base.yaml", SPEC.replace("loss", "''"))  # an empty metric name
    _git(project, "add", "-A")
    done = _git(project, "commit", "-m", "a broken base")
    assert done.returncode == 1
    assert "sweeps/_base.yaml:2:" in done.stderr
    # the hook on the changed base and the one on the directory: both spec(s) that extend it
    assert done.stderr.count("2 spec(s) checked, 1 with errors") == 2, done.stderr
