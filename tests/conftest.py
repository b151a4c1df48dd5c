"""Shared fixtures: every test runs inside its own temporary directory.

The autouse fixture changes into ``tmp_path``, so a file written with a relative path (a run
directory, a stray output) lands there and never in the checkout. Tests that need the
repository (golden files, ``sweeps/``) use absolute paths or ``chdir`` there themselves.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

MINIMAL_SPEC = """\
sweepspec: 1
objective:
  function: train:main
  metric: loss
  mode: min
space:
  lr: {loguniform: [1.0e-5, 1.0e-1]}
"""


@pytest.fixture(autouse=True)
def _hermetic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run in ``tmp_path``; no debug mode leaking in from the caller's environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SWEEPSPEC_DEBUG", raising=False)


def write(directory: Path, name: str, text: str) -> Path:
    """Write ``text`` to ``directory/name`` (creating parent directories) and return the path."""
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def write_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """``write_file(name, text)``: a file under ``tmp_path``."""
    return lambda name, text: write(tmp_path, name, text)


@pytest.fixture
def repo() -> Path:
    """The repository root."""
    return REPO


@pytest.fixture
def minimal_spec() -> str:
    """The text of a small valid spec (one parameter ``lr``)."""
    return MINIMAL_SPEC
