"""Shared fixtures: every test runs inside its own temporary directory.

The autouse fixture changes into ``tmp_path``, so a file written with a relative path (a run
directory, a stray output) lands there and never in the checkout. Tests that need the
repository (golden files, ``sweeps/``) use absolute paths or ``chdir`` there themselves.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn

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


def unavailable(why: str) -> NoReturn:
    """A real component a test needs is missing: skip, except under ``scripts/test`` (it sets
    ``SWEEPSPEC_REQUIRE_ALL=1`` after installing them all), where that is a failure: CI never
    passes by skipping what it was meant to test."""
    if os.environ.get("SWEEPSPEC_REQUIRE_ALL") == "1":
        pytest.fail(f"{why} (SWEEPSPEC_REQUIRE_ALL=1: scripts/test installs it)", pytrace=False)
    pytest.skip(why)


@pytest.fixture(autouse=True)
def _one_ray_test_at_a_time(request: pytest.FixtureRequest) -> Iterator[None]:
    """The tests marked ``ray`` hold one lock of this machine while they run: under
    ``pytest -n 2`` (scripts/test) the other test process runs the rest meanwhile, never a
    second Ray test (two Ray clusters running trials on two cores would starve each other)."""
    if request.node.get_closest_marker("ray") is None:
        yield
        return
    import fcntl
    import tempfile

    with open(Path(tempfile.gettempdir()) / "sweepspec-tests-ray.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


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


def ensure_local_ray() -> Any:
    """The test process's own local Ray (2 CPUs and 2 *logical* GPUs, so that GPU packing is
    tested without a GPU), started on first use and kept for the session: in-process Ray runs
    share it (a run on a Ray it did not start leaves it running)."""
    import logging
    import os

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    from sweepspec.backends.ray_backend.env import set_ray_env

    set_ray_env()
    import ray

    if not ray.is_initialized():
        ray.init(
            address="local",
            num_cpus=2,
            num_gpus=2,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.ERROR,
        )
    return ray


def stop_local_ray() -> None:
    """Shut the test process's Ray down (a test that needs a Ray of its own)."""
    import sys

    ray = sys.modules.get("ray")
    if ray is not None and ray.is_initialized():
        ray.shutdown()


@pytest.fixture
def local_ray() -> Any:
    """The session's local Ray in this process (see :func:`ensure_local_ray`)."""
    return ensure_local_ray()


@pytest.fixture
def no_local_ray() -> None:
    """No Ray in this process (for a test that joins a cluster or needs a real GPU)."""
    stop_local_ray()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_local_ray()
