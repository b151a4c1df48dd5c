"""The command line: exit codes, output formats, the error handler, and what validate imports.

Most tests call ``sweepspec.cli.main`` in-process (fast); a few run ``python -m sweepspec``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from sweepspec import cli
from sweepspec.cli import build_parser, main
from sweepspec.errors import Location, Problem, SweepspecError
from sweepspec.schema import schema_text

REPO = Path(__file__).resolve().parents[2]
SWEEPS = REPO / "sweeps"
INVALID = REPO / "tests" / "data" / "invalid"
VALID = REPO / "tests" / "data" / "valid"
BAD = INVALID / "unknown_top_key.yaml"

WriteFile = Callable[[str, str], Path]
Capsys = pytest.CaptureFixture[str]


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    """``python ARGS`` in the repository root (SWEEPSPEC_DEBUG is unset by the autouse fixture)."""
    return subprocess.run(
        [sys.executable, *args],
        check=False,
        cwd=REPO,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=120,
    )


# --------------------------------------------------------------------------- exit codes


def test_validate_valid_directories(capsys: Capsys) -> None:
    assert main(["validate", str(SWEEPS)]) == 0
    out, err = capsys.readouterr()
    assert out == ""
    assert re.fullmatch(r"\d+ spec\(s\) valid\n", err)
    assert main(["validate", str(VALID)]) == 0


def test_validate_errors_exit_1(capsys: Capsys) -> None:
    assert main(["validate", str(BAD)]) == 1
    out, err = capsys.readouterr()
    assert "unknown key 'seracher' (did you mean 'searcher'?)" in out
    assert err == "1 spec(s) checked, 1 with errors\n"


def test_validate_mixed_valid_and_invalid(capsys: Capsys) -> None:
    assert main(["validate", str(VALID / "full.yaml"), str(BAD)]) == 1
    assert "2 spec(s) checked, 1 with errors" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [[], ["validate"], ["validate", "--bogus", "x.yaml"], ["validate", "--format", "xml", "x"],
     ["frobnicate"], ["schema", "--nope"]],
    ids=["no-args", "no-paths", "bad-flag", "bad-format", "bad-command", "schema-bad-flag"],
)  # fmt: skip
def test_usage_errors_exit_2(argv: list[str], capsys: Capsys) -> None:
    assert main(argv) == 2
    assert "usage:" in capsys.readouterr().err


def test_help_and_version_exit_0(capsys: Capsys) -> None:
    assert main(["--help"]) == 0
    assert "validate" in capsys.readouterr().out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("sweepspec ")


def test_nonexistent_path(capsys: Capsys) -> None:
    assert main(["validate", "no/such/spec.yaml"]) == 1
    out, _ = capsys.readouterr()
    assert out == "no/such/spec.yaml: no such file or directory\n"


def test_directory_without_specs(tmp_path: Path, capsys: Capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert main(["validate", "empty"]) == 1
    assert "no spec files found" in capsys.readouterr().err


def test_directory_recursion_skips_underscore_files(
    write_file: WriteFile, minimal_spec: str, capsys: Capsys
) -> None:
    write_file("specs/_base.yaml", "this: [is not: a spec\n")
    write_file("specs/deep/er/_partial.yml", "sweepspec: 1\n")
    write_file("specs/deep/er/good.yml", minimal_spec)
    write_file("specs/deep/notes.txt", "not yaml at all: [")
    write_file("specs/top.yaml", minimal_spec)
    assert main(["validate", "specs"]) == 0
    assert capsys.readouterr().err == "2 spec(s) valid\n"
    # named explicitly, an underscore file is checked
    assert main(["validate", "specs/_base.yaml"]) == 1


def test_directory_recursion_finds_nested_errors(
    write_file: WriteFile, minimal_spec: str, capsys: Capsys
) -> None:
    write_file("specs/a/b/bad.yaml", minimal_spec + "colour: red\n")
    write_file("specs/ok.yaml", minimal_spec)
    assert main(["validate", "specs"]) == 1
    out, err = capsys.readouterr()
    assert out == "specs/a/b/bad.yaml:8:1: colour: unknown key 'colour'\n"
    assert err == "2 spec(s) checked, 1 with errors\n"


# --------------------------------------------------------------------------- formats


def test_format_json(capsys: Capsys) -> None:
    assert main(["validate", "--format", "json", str(INVALID / "when_cycle.yaml"), "nope"]) == 1
    problems = json.loads(capsys.readouterr().out)
    assert len(problems) == 3
    for problem in problems:
        assert set(problem) == {"file", "line", "col", "path", "code", "message"}
    missing = next(p for p in problems if p["file"] == "nope")
    assert (missing["line"], missing["col"], missing["code"]) == (None, None, "io")
    cycle = [p for p in problems if p["file"] != "nope"]
    assert [(p["line"], p["col"], p["path"]) for p in cycle] == [
        (7, 34, "space.a.when"),
        (8, 34, "space.b.when"),
    ]
    assert all(p["code"] == "condition-cycle" for p in cycle)


def test_format_json_valid_is_an_empty_list(capsys: Capsys) -> None:
    assert main(["validate", "--format", "json", str(SWEEPS)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_format_github(capsys: Capsys) -> None:
    paths = [str(p) for p in sorted(INVALID.glob("[!_]*.yaml"))]
    assert main(["validate", "--format", "github", *paths]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) >= len(paths)
    for line in lines:
        assert re.match(r"^::error file=[^,]+,line=\d+,col=\d+,title=[^,:]+::", line), line


def test_format_github_escapes_newlines(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    problem = Problem("two\nlines 100%", "a.b", Location("f.yaml", 3, 4))
    monkeypatch.setattr(
        "sweepspec.commands.validate_cmd.validate_paths", lambda paths: (1, [problem])
    )
    assert main(["validate", "--format", "github", "f.yaml"]) == 1
    assert capsys.readouterr().out == (
        "::error file=f.yaml,line=3,col=4,title=sweepspec%3A a.b::a.b: two%0Alines 100%25\n"
    )


# --------------------------------------------------------------------------- error handler


def _fake_command(monkeypatch: pytest.MonkeyPatch, exc: BaseException) -> None:
    def command(args: object) -> int:
        raise exc

    monkeypatch.setattr(cli, "_command", lambda name: command)


def test_user_error_has_no_traceback(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    _fake_command(monkeypatch, SweepspecError(Problem("bad", "x", Location("s.yaml", 2, 3))))
    assert main(["validate", "s.yaml"]) == 1
    _, err = capsys.readouterr()
    assert err == "s.yaml:2:3: x: bad\n"


def test_debug_shows_traceback_for_user_error(
    monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    monkeypatch.setenv("SWEEPSPEC_DEBUG", "1")
    _fake_command(monkeypatch, SweepspecError("bad"))
    assert main(["validate", "s.yaml"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err
    assert err.endswith("bad\n")


def test_validate_debug_shows_traceback(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    assert main(["validate", str(BAD)]) == 1
    assert "Traceback" not in capsys.readouterr().err
    monkeypatch.setenv("SWEEPSPEC_DEBUG", "1")
    assert main(["validate", str(BAD)]) == 1
    out, err = capsys.readouterr()
    assert "Traceback (most recent call last)" in err
    assert "SweepspecError" in err
    assert "unknown key 'seracher'" in out


def test_bug_exits_3_with_traceback(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    _fake_command(monkeypatch, RuntimeError("boom"))
    assert main(["validate", "s.yaml"]) == 3
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: boom" in err
    assert "This is a bug in sweepspec; please report it" in err


def test_interrupt_exits_130(monkeypatch: pytest.MonkeyPatch, capsys: Capsys) -> None:
    _fake_command(monkeypatch, KeyboardInterrupt())
    assert main(["validate", "s.yaml"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


def test_no_traceback_for_any_invalid_file(capsys: Capsys) -> None:
    for path in sorted(INVALID.glob("*.yaml")):
        assert main(["validate", str(path)]) == 1, path
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err, path
        assert out.strip(), path


# --------------------------------------------------------------------------- subprocess


def test_python_m_sweepspec_validate() -> None:
    ok = run_module("-m", "sweepspec", "validate", "sweeps/")
    assert ok.returncode == 0, ok.stderr
    assert "Traceback" not in ok.stderr
    bad = run_module("-m", "sweepspec", "validate", "tests/data/invalid")
    assert bad.returncode == 1
    assert "Traceback" not in bad.stderr
    assert "tests/data/invalid/unknown_top_key.yaml:8:1: seracher: unknown key" in bad.stdout
    usage = run_module("-m", "sweepspec", "validate")
    assert usage.returncode == 2
    assert "usage:" in usage.stderr


HEAVY = (
    "ray",
    "optuna",
    "torch",
    "hyperopt",
    "gymnasium",
    "sweepspec_examples",
    "mlflow",
    "matplotlib",
)

IMPORT_PROBE = """\
import sys
heavy = {heavy!r}
{body}
loaded = sorted(m for m in sys.modules if m.split(".")[0] in heavy)
print("LOADED", loaded)
"""


@pytest.mark.parametrize(
    "body",
    [
        "import sweepspec",
        "from sweepspec.cli import main\n"
        "assert main(['validate', 'sweeps', 'tests/data/valid']) == 0\n"
        "assert main(['validate', 'tests/data/invalid']) == 1",
    ],
    ids=["import", "validate"],
)
def test_validate_imports_no_heavy_library(body: str) -> None:
    code = IMPORT_PROBE.format(heavy=HEAVY, body=body)
    result = run_module("-c", code)
    assert result.returncode == 0, result.stderr
    assert "LOADED []" in result.stdout, result.stdout


# --------------------------------------------------------------------------- schema


def test_schema_prints_the_schema(capsys: Capsys) -> None:
    assert main(["schema"]) == 0
    out = capsys.readouterr().out
    assert out == schema_text()
    assert json.loads(out)["$id"].endswith("sweepspec-v1.json")


def test_schema_check_passes_on_checked_in_schema(capsys: Capsys) -> None:
    assert main(["schema", "--check"]) == 0
    assert "up to date" in capsys.readouterr().err


def test_schema_check_fails_when_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    stale = tmp_path / "schemas" / "sweepspec-v1.json"
    stale.parent.mkdir()
    stale.write_text('{"old": true}\n', encoding="utf-8")
    monkeypatch.setattr("sweepspec.commands.schema_cmd.schema_path", lambda: stale)
    assert main(["schema", "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    stale.unlink()
    assert main(["schema", "--check"]) == 1  # missing is stale too
    assert main(["schema", "--write"]) == 0
    assert stale.read_text(encoding="utf-8") == schema_text()
    assert main(["schema", "--check"]) == 0


# --------------------------------------------------------------------------- conventions


def _subparsers() -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def test_top_level_help_describes_the_tool_and_its_common_commands(capsys: Capsys) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert "No logic lives here" not in out and "parse arguments" not in out
    assert "A hyperparameter sweep as a YAML file" in out
    assert "common commands:" in out
    for command in ("validate sweeps/", "run sweeps/dqn.yaml", "diff --rev origin/main"):
        assert f"sweepspec {command}" in out
    assert "sweepspec completion bash" in out


def test_every_command_and_argument_has_help() -> None:
    commands = _subparsers()
    assert set(commands) >= {"validate", "run", "worker", "plan", "status", "results", "diff",
                             "schema", "completion"}  # fmt: skip
    for name, parser in commands.items():
        assert parser.description and len(parser.description) > 40, name
        for action in parser._actions:
            if action.help == argparse.SUPPRESS and action.dest == "format":
                continue  # the old --json, kept working but not shown
            assert action.help, (name, action.dest)


@pytest.mark.parametrize(
    ("command", "choices"),
    [("plan", "text,json"), ("diff", "text,github,json"), ("status", "text,json"),
     ("results", "table,csv,json"), ("validate", "text,json,github")],
)  # fmt: skip
def test_one_format_flag_across_commands(command: str, choices: str, capsys: Capsys) -> None:
    assert main([command, "--help"]) == 0
    assert f"--format {{{choices}}}" in capsys.readouterr().out
    assert main([command, "--format", "yaml", "x.yaml"]) == 2


def test_completion_scripts(capsys: Capsys) -> None:
    assert main(["completion", "zsh"]) == 0
    zsh = capsys.readouterr().out
    assert zsh.startswith("#compdef sweepspec")
    assert main(["completion", "bash"]) == 0
    bash = capsys.readouterr().out
    for name in _subparsers():
        assert name in bash
    assert "--export-best" in bash and "--exit-code" in bash and "--json" not in bash
    if shutil.which("bash") is None:
        return
    # the script loads in bash and completes the commands and a command's options
    probe = (
        'source /dev/stdin; COMP_WORDS=(sweepspec "$1"); COMP_CWORD=1; COMP_LINE="sweepspec $1";'
        ' COMP_POINT=${#COMP_LINE}; _shtab_sweepspec; printf "%s\\n" "${COMPREPLY[@]}"'
    )
    done = subprocess.run(
        ["bash", "-c", probe, "bash", "st"], input=bash, capture_output=True, text=True, check=True
    )
    assert done.stdout.split() == ["status"]
    done = subprocess.run(
        ["bash", "-c", probe.replace('(sweepspec "$1")', '(sweepspec diff "$1")')
         .replace("COMP_CWORD=1", "COMP_CWORD=2").replace("sweepspec $1", "sweepspec diff $1"),
         "bash", "--ex"],
        input=bash, capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert done.stdout.split() == ["--exit-code"]


def test_top_takes_a_positive_number(capsys: Capsys) -> None:
    assert main(["results", "--top", "0", "x.yaml"]) == 2
    assert "at least 1" in capsys.readouterr().err


# --------------------------------------------------------------------------- validate codes

#: the codes validate's JSON may carry: sweepspec's own, never pydantic's internal names
CODE = re.compile(r"^[a-z]+(-[a-z]+)*$")
PYDANTIC = ("value_error", "literal_error", "missing", "extra_forbidden", "int_parsing")


def test_validate_json_codes_are_sweepspec_codes(capsys: Capsys) -> None:
    assert main(["validate", "--format", "json", str(INVALID)]) == 1
    problems = json.loads(capsys.readouterr().out)
    codes = {p["code"] for p in problems}
    assert all(CODE.match(c) for c in codes), codes
    assert not codes & set(PYDANTIC)
    assert {"unknown-key", "out-of-range", "wrong-type", "invalid-value"} <= codes


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        ("resources: {max_concurrent: AUTO}", "wrong-type",
         "resources.max_concurrent: input should be a valid integer or 'auto', but got 'AUTO' "
         "(did you mean 'auto'?)"),
        ("backend: {type: optuna, workers: -2}", "out-of-range",
         "backend.workers: input should be greater than or equal to 1 or 'auto', but got -2"),
        ("objective: {function: m:f, metric: loss, mode: MIN}", "invalid-choice",
         "objective.mode: input should be 'max' or 'min', but got 'MIN' (did you mean 'min'?)"),
        ("stop: {trial: {loss: abc}}", "wrong-type",
         "stop.trial.loss: input should be a valid number or a valid dictionary, but got 'abc'"),
        ("stop: {trial: {loss: {'>>': 3}}}", "key-name",
         "stop.trial.loss.>>: a key here is '>=', '<=', '>' or '<', but got '>>'"),
        ("storage: 5", "wrong-type", "storage: input should be a valid string, but got an int"),
        ("trials: {num_samples: 0}", "out-of-range",
         "trials.num_samples: input should be greater than or equal to 1, but got 0"),
        ("searcher: {type: tpe, sed: 1}", "unknown-key",
         "searcher.sed: unknown key 'sed' (did you mean 'seed'?)"),
    ],
    ids=["literal-in-union", "range-in-union", "literal", "two-types", "key-literal",
         "article", "range", "unknown-key"],
)  # fmt: skip
def test_validate_messages_say_what_they_got_once(
    write_file: WriteFile, extra: str, code: str, message: str, capsys: Capsys
) -> None:
    base = "sweepspec: 1\nspace: {x: {uniform: [0, 1]}}\n"
    objective = (
        ""
        if extra.startswith("objective")
        else "objective: {function: m:f, metric: loss, mode: min}\n"
    )
    write_file("s.yaml", base + objective + extra + "\n")
    assert main(["validate", "--format", "json", "s.yaml"]) == 1
    problems = json.loads(capsys.readouterr().out)
    problem = next(p for p in problems if message.startswith(p["path"] + ":"))
    assert f"{problem['path']}: {problem['message']}" == message
    assert problem["code"] == code
    for p in problems:
        assert p["message"].count("but got") <= 1, p
