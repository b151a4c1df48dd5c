"""One harness for the contract suite: the same spec, run through the CLI on each backend.

The Optuna backend runs ``sweepspec run`` in a subprocess; the Ray backend runs the CLI's own
``main`` in this process, on the session's local Ray (starting a Ray for every run would cost
about 10 s each). Runs that are killed (SIGKILL) are subprocesses on both backends."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.builders import OBJECTIVES, env, spec, write_spec
from tests.conftest import ensure_local_ray

BACKENDS = [
    pytest.param("optuna", id="optuna"),
    pytest.param("ray", id="ray", marks=pytest.mark.ray),
]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    if name == "ray":
        ensure_local_ray()
    return name


@dataclass
class Run:
    """What one ``sweepspec`` command did."""

    code: int
    out: str
    err: str

    def ok(self) -> Run:
        assert self.code == 0, f"exit {self.code}\n{self.out}\n{self.err}"
        assert "Traceback" not in self.err, self.err
        return self


class Sweep:
    """A spec in a test's directory, run and read on one backend."""

    def __init__(self, tmp_path: Path, backend: str) -> None:
        self.dir = tmp_path
        self.backend = backend
        self.name = ""

    # -- writing --

    def write(self, name: str, function: str = "record", **sections: Any) -> dict[str, Any]:
        """Write ``spec.yaml``: the builder's spec on this backend, the objective a function of
        ``tests/objectives.py`` (its ground truth goes to this directory)."""
        objective = dict(sections.pop("objective", {}))
        config = {"log_dir": str(self.dir), **objective.pop("config", {})}
        objective = {"function": f"{OBJECTIVES}:{function}", "config": config, **objective}
        data = spec(name, self.backend, objective=objective, **sections)
        write_spec(self.dir, data)
        self.name = name
        return data

    def edit(self, **sections: Any) -> None:
        """Change sections of the written spec (a whole section is replaced)."""
        path = self.dir / "spec.yaml"
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        data.update(sections)
        write_spec(self.dir, data)

    # -- running --

    def command(self, *args: str) -> Run:
        """``sweepspec ARGS`` in the test's directory."""
        if self.backend == "optuna":
            proc = subprocess.run(
                [sys.executable, "-m", "sweepspec", *args],
                cwd=self.dir,
                env=env(),
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            return Run(proc.returncode, proc.stdout, proc.stderr)
        from sweepspec.cli import main

        out, err = io.StringIO(), io.StringIO()
        with (
            contextlib.chdir(self.dir),
            contextlib.redirect_stdout(out),
            contextlib.redirect_stderr(err),
        ):
            code = main(list(args))
        return Run(code, out.getvalue(), err.getvalue())

    def run(self, *args: str) -> Run:
        return self.command("run", "spec.yaml", *args)

    def popen(self, *args: str, **environ: str) -> subprocess.Popen[bytes]:
        """``sweepspec run spec.yaml ARGS`` as a subprocess in its own process group (with the
        environment variables ``environ`` too)."""
        extra = {"RAY_AUTH_MODE": "disabled", "TUNE_GLOBAL_CHECKPOINT_S": "1", **environ}
        with open(self.dir / "stderr.txt", "ab") as err:
            return subprocess.Popen(
                [sys.executable, "-m", "sweepspec", "run", "spec.yaml", *args],
                cwd=self.dir,
                env={**env(), **extra},
                stdout=subprocess.DEVNULL,
                stderr=err,
                start_new_session=True,
            )

    @staticmethod
    def kill(proc: subprocess.Popen[bytes]) -> None:
        """SIGKILL the run's process group (driver, trial processes, a Ray it started) and
        anything of its tree that left the group; wait until all are gone."""
        import psutil

        try:
            tree = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            tree = []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        for p in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
        _gone, alive = psutil.wait_procs(tree, timeout=20)
        assert not alive, f"processes survived the kill: {alive}"

    # -- reading --

    @property
    def run_dir(self) -> Path:
        data = yaml.safe_load((self.dir / "spec.yaml").read_text(encoding="utf-8"))
        return self.dir / data.get("storage", "runs") / self.name

    def rows(self) -> list[dict[str, str]]:
        with open(self.run_dir / "trials.csv", newline="", encoding="utf-8") as fh:
            return list(csv.DictReader(fh))

    def columns(self) -> list[str]:
        with open(self.run_dir / "trials.csv", newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh))

    def summary(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.run_dir / "summary.json").read_text())
        return data

    def best(self) -> str:
        return (self.run_dir / "best.yaml").read_text(encoding="utf-8")

    def log(self, kind: str = "configs") -> list[dict[str, Any]]:
        """The objective's own ground truth (``tests/objectives.py``)."""
        path = self.dir / f"{kind}.jsonl"
        if not path.exists():
            return []
        out = []
        for line in path.read_text(encoding="utf-8").splitlines():
            with contextlib.suppress(ValueError):  # a line torn by a kill
                out.append(json.loads(line))
        return out

    def configs(self) -> list[dict[str, Any]]:
        """The configs trials received (one per attempt)."""
        return [e["config"] for e in self.log() if e["event"] == "start"]


@pytest.fixture
def sweep(tmp_path: Path, backend: str) -> Iterator[Sweep]:
    yield Sweep(tmp_path, backend)
