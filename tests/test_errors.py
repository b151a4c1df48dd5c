"""Rendering problems: one line each whatever the input holds, GitHub annotations escaped as
GitHub's own toolkit escapes them."""

from __future__ import annotations

from pathlib import Path

import pytest

from sweepspec.cli import main
from sweepspec.errors import Location, Problem, printable, render_problems


def test_a_key_with_a_newline_cannot_forge_a_second_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "s.yaml").write_text(
        "sweepspec: 1\nobjective: {function: m:f, metric: loss, mode: min}\n"
        "space: {x: {uniform: [0, 1]}}\n"
        '"bad\\nfake.yaml:1:1: space: forged error\\u001b[2K": 1\n',
        encoding="utf-8",
    )
    for fmt in ("text", "github"):
        assert main(["validate", "--format", fmt, str(tmp_path / "s.yaml")]) == 1
        lines = capsys.readouterr().out.splitlines()
        assert len(lines) == 1, lines  # the one problem, on one line
        assert "\x1b" not in lines[0] and "\\x1b" in lines[0]


def test_github_properties_are_escaped_and_titled() -> None:
    problem = Problem("must hold\nhere 100%", "space.x", Location("a,b:c/s.yaml", 3, 4), "x")
    (line,) = render_problems([problem], "github").splitlines()
    assert line == (
        "::error file=a%2Cb%3Ac/s.yaml,line=3,col=4,title=sweepspec%3A space.x"
        "::space.x: must hold%0Ahere 100%25"
    )


def test_printable_escapes_controls_and_keeps_text() -> None:
    assert printable("a\tb\nc\x00d\u2028é") == "a\\tb\\nc\\x00d\\u2028é"
    assert printable("x\ny", newlines=True) == "x\ny"
