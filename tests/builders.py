"""The one spec builder of the tests (:func:`spec`, :func:`write_spec`), and helpers for
end-to-end tests of ``sweepspec run``: run the CLI in a subprocess, read what the run left
behind (trials.csv, summary.json, best.yaml, the Optuna study), watch processes."""

from __future__ import annotations

import contextlib
import copy
import csv
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]  # the repository root: sweepspec_examples imports
#: Objectives with a ground truth of their own (``tests/objectives.py``), by file path.
OBJECTIVES = Path(__file__).with_name("objectives.py")

BASE: dict[str, Any] = {
    "sweepspec": 1,
    "objective": {"function": "sweepspec_examples.toy:quadratic", "metric": "loss", "mode": "min"},
    "space": {"x": {"uniform": [-1.0, 1.0]}, "y": {"uniform": [-1.0, 1.0]}},
    "searcher": {"type": "random", "seed": 0},
    "trials": {"num_samples": 4},
    "resources": {"max_concurrent": 2},
}


def merge(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` updated by ``extra`` recursively; a value ``None`` in ``extra`` deletes."""
    out = copy.deepcopy(dict(base))
    for key, value in extra.items():
        if value is None:
            out.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def spec(name: str, backend_type: str = "optuna", **sections: Any) -> dict[str, Any]:
    """A spec dict: :data:`BASE` with ``sections`` merged in (``space`` replaces the base's)
    on the backend ``backend_type`` (a ``backend`` section adds its other keys)."""
    data = copy.deepcopy(BASE)
    if "space" in sections:
        data["space"] = sections.pop("space")
    data = merge(data, sections)
    data["name"] = name
    if backend_type != "optuna":
        data["backend"] = merge({"type": backend_type}, sections.get("backend") or {})
    return data


CURVE = "sweepspec_examples.toy:curve"


def curve_spec(
    name: str,
    *,
    num_samples: int,
    epochs: int,
    step_seconds: float | None = None,
    **sections: Any,
) -> dict[str, Any]:
    """A spec whose objective is the resumable learning curve (``toy:curve``: a loss
    reported every epoch, with a checkpoint) over ``lr``; ``sections`` merged in."""
    config: dict[str, Any] = {"epochs": epochs}
    if step_seconds is not None:
        config["step_seconds"] = step_seconds
    return spec(
        name,
        objective={"function": CURVE, "config": config},
        space={"lr": {"loguniform": [1e-4, 1e-1]}},
        trials={"num_samples": num_samples},
        **sections,
    )


def write_spec(tmp_path: Path, data: Mapping[str, Any] | str, file: str = "spec.yaml") -> Path:
    path = tmp_path / file
    text = data if isinstance(data, str) else yaml.safe_dump(dict(data), sort_keys=False)
    path.write_text(text, encoding="utf-8")
    return path


def env() -> dict[str, str]:
    out = dict(os.environ)
    paths = [str(REPO), *(p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p)]
    out["PYTHONPATH"] = os.pathsep.join(paths)
    out.pop("SWEEPSPEC_DEBUG", None)
    return out


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "sweepspec", "run", *args]


def run_cli(
    tmp_path: Path, *args: str, spec_file: str = "spec.yaml", timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``sweepspec run spec.yaml ARGS`` in ``tmp_path``."""
    return subprocess.run(
        command(spec_file, *args),
        cwd=tmp_path,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def run_ok(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    proc = run_cli(tmp_path, *args, timeout=timeout)
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


def popen(tmp_path: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start ``sweepspec run spec.yaml ARGS`` in its own process group (session)."""
    return subprocess.Popen(
        command("spec.yaml", *args),
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


def kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> str:
    """Send ``sig`` to the process group of ``proc``; wait for it; its stderr."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
    return finish(proc)


def finish(proc: subprocess.Popen[bytes], timeout: float = 30) -> str:
    """Wait for ``proc`` (started by :func:`popen`); its stderr."""
    _, err = proc.communicate(timeout=timeout)
    return err.decode("utf-8", "replace")


def run_dir(tmp_path: Path, name: str) -> Path:
    return tmp_path / "runs" / name


def read_csv(tmp_path: Path, name: str) -> list[dict[str, str]]:
    with open(run_dir(tmp_path, name) / "trials.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def read_summary(tmp_path: Path, name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((run_dir(tmp_path, name) / "summary.json").read_text())
    return data


def read_best(tmp_path: Path, name: str) -> str:
    return (run_dir(tmp_path, name) / "best.yaml").read_text(encoding="utf-8")


def load_study(tmp_path: Path, name: str) -> Any:
    """The run's Optuna study, read straight from its journal."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    journal = run_dir(tmp_path, name) / "study.journal"
    storage = JournalStorage(JournalFileBackend(str(journal)))
    return optuna.load_study(study_name=name, storage=storage)


def attempts(study: Any) -> dict[str, list[Any]]:
    """Optuna trials that ran (not constraint rejections) by logical trial id."""
    out: dict[str, list[Any]] = {}
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("rejected") or "logical" not in t.user_attrs:
            continue
        out.setdefault(str(t.user_attrs["logical"]), []).append(t)
    return out


def states(rows: list[dict[str, str]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return counts


def journal_ok(path: Path) -> None:
    """Every line of the journal is a JSON object and the file ends with a newline."""
    data = path.read_bytes()
    assert data.endswith(b"\n")
    for line in data.splitlines():
        assert isinstance(json.loads(line), dict)


# Helpers that multiprocessing starts for the test process itself (another test's spawn context
# starts a resource tracker that lives as long as pytest): not something a sweep left behind.
_OWN_HELPERS = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def descendants() -> list[Any]:
    """Live (non-zombie) descendants of this test process, but multiprocessing's own helpers."""
    import psutil

    out = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() == psutil.STATUS_ZOMBIE:
                continue
            if any(h in " ".join(p.cmdline()) for h in _OWN_HELPERS):
                continue
            out.append(p)
        except psutil.NoSuchProcess:
            continue
    return out


def processes_running(cmdline: list[str]) -> list[Any]:
    """Live processes (anywhere) whose command line is exactly ``cmdline``."""
    import psutil

    out = []
    for p in psutil.process_iter(["cmdline", "status"]):
        if p.info["cmdline"] == cmdline and p.info["status"] != psutil.STATUS_ZOMBIE:
            out.append(p)
    return out


def leftovers(directory: Path) -> list[Any]:
    """Live processes (anywhere, any parent) whose cwd is ``directory`` or below: trials run
    in the directory ``sweepspec run`` was started from."""
    import psutil

    out = []
    for p in psutil.process_iter(["cwd", "status"]):
        if p.pid == os.getpid():
            continue  # the test itself may run there
        cwd = p.info["cwd"] or ""
        if (cwd == str(directory) or cwd.startswith(f"{directory}/")) and p.info[
            "status"
        ] != psutil.STATUS_ZOMBIE:
            out.append(p)
    return out


def no_leftovers(directory: Path, timeout: float = 5) -> bool:
    """Whether, within ``timeout`` s, no descendant of this process is alive and no process
    runs in ``directory``."""
    return wait_until(lambda: not descendants() and not leftovers(directory), timeout)


def describe(procs: list[Any]) -> list[str]:
    out = []
    for p in procs:
        try:
            out.append(f"{p.pid} (parent {p.ppid()}): {p.cmdline()}")
        except Exception as exc:  # gone meanwhile
            out.append(f"{p.pid}: {exc!r}")
    return out


def wait_until(predicate: Any, timeout: float, interval: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
