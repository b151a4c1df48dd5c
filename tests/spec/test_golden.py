"""Golden error messages: one invalid spec per error kind, compared as whole strings.

``tests/data/invalid/NAME.yaml`` holds the spec, ``NAME.expected`` the exact stdout of
``sweepspec validate tests/data/invalid/NAME.yaml`` run from the repository root. Files starting
with ``_`` are bases for ``extends:`` and have no golden file of their own.

Regenerate after a deliberate message change with::

    SWEEPSPEC_UPDATE_GOLDEN=1 pytest tests/test_golden.py

then review every changed ``.expected`` by eye (line:col at the offending key or value, a clear
message) before committing.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from sweepspec.cli import main

REPO = Path(__file__).resolve().parents[2]
INVALID = REPO / "tests" / "data" / "invalid"
CASES = sorted(p for p in INVALID.glob("*.yaml") if not p.name.startswith("_"))
UPDATE = os.environ.get("SWEEPSPEC_UPDATE_GOLDEN") == "1"

# every rendered problem: file:line:col: [key.path: ]message
LINE = re.compile(r"^tests/data/invalid/[\w.]+\.yaml:[1-9]\d*:[1-9]\d*: \S.*$")


def _validate(spec: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]):
    monkeypatch.chdir(REPO)
    code = main(["validate", spec.relative_to(REPO).as_posix()])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("spec", CASES, ids=[p.stem for p in CASES])
def test_golden_message(
    spec: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _validate(spec, monkeypatch, capsys)
    expected = spec.with_suffix(".expected")
    if UPDATE:
        expected.write_text(out, encoding="utf-8")
    assert code == 1, out + err
    assert "Traceback" not in err
    assert out == expected.read_text(encoding="utf-8")
    for line in out.splitlines():
        assert LINE.match(line), line


def test_golden_set_is_complete() -> None:
    assert len(CASES) >= 30
    orphans = [p.name for p in INVALID.glob("*.expected") if not p.with_suffix(".yaml").exists()]
    assert not orphans, f"golden files without a spec: {orphans}"


def test_inline_password_is_never_shown(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = INVALID / "storage_password.yaml"
    assert "hunter2secret" in spec.read_text(encoding="utf-8")
    for fmt in ("text", "json", "github"):
        monkeypatch.chdir(REPO)
        assert main(["validate", "--format", fmt, str(spec)]) == 1
        out, err = capsys.readouterr()
        assert "hunter2secret" not in out + err
        assert "***" in out


def test_newer_version_is_one_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _validate(INVALID / "newer_version.yaml", monkeypatch, capsys)
    assert len(out.splitlines()) == 1
    assert "needs a newer sweepspec" in out


def test_error_in_base_names_the_base(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, out, _ = _validate(INVALID / "extends_base_error.yaml", monkeypatch, capsys)
    assert out.startswith("tests/data/invalid/_bad_base.yaml:9:3: scheduler.grace_periods: ")
