"""The run directory ``<storage>/<name>/``: layout, the frozen spec, and the fingerprint that
decides whether a re-run resumes or must be refused.

Layout (every name is defined here, once)::

    spec.yaml            the spec file, verbatim
    spec.resolved.yaml   after extends, overrides and interpolation
    meta.json            fingerprint, study name, backend, cumulative run time
    trials.csv  best.yaml  summary.json  plots/  report.html
    reports/<id>.jsonl   every report of a trial, with its step (learning curves)
    trials/<id>/         per trial: log.txt, checkpoint.pkl (+ checkpoint.json),
                         error-<attempt>.txt, final_error.txt
    study.journal        the Optuna study (optuna backend, default storage)
    workers/  gate.lock  create.lock      liveness leases and launch locks (optuna backend)
    ledger.jsonl  tune/  exactly-once trial events and the Ray experiment (ray backend)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sweepspec.errors import Problem, SweepspecError, io_problem
from sweepspec.run.crash import crash_point
from sweepspec.spec.read import LoadedSpec

__all__ = [
    "CHECKPOINT",
    "CHECKPOINT_PROGRESS",
    "EXPERIMENT_NAME",
    "FINAL_ERROR",
    "TRIAL_LOG",
    "RunDir",
    "atomic_write",
    "changed_sections",
    "fingerprint",
    "made_with",
    "spec_changes",
]

#: In a trial's directory: the pickled state of its last checkpoint, the iterations it was
#: taken at, its output, and the reason of a failure that no retry can fix (ray backend).
CHECKPOINT = "checkpoint.pkl"
CHECKPOINT_PROGRESS = "checkpoint.json"
TRIAL_LOG = "log.txt"
FINAL_ERROR = "final_error.txt"

# Sections whose change makes old results meaningless (DESIGN.md §4). Budget keys (trials,
# stop, resources, backend workers) may change freely: they extend or shrink the run.
#: The Ray experiment's directory name inside the run directory.
EXPERIMENT_NAME = "tune"

#: A temporary file of a write older than this, of a process that is gone, was left by a kill.
STALE_TMP_S = 60.0

FINGERPRINT_SECTIONS = ("space", "derived", "constraints", "objective", "searcher", "scheduler")


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def fingerprint(loaded: LoadedSpec) -> dict[str, str]:
    """A short hash per section that matters for resume."""
    data = loaded.spec.dump()
    return {key: _digest(data.get(key)) for key in FINGERPRINT_SECTIONS}


def changed_sections(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return [k for k in FINGERPRINT_SECTIONS if old.get(k) != new.get(k)]


def spec_changes(loaded: LoadedSpec, meta: Mapping[str, Any]) -> list[str]:
    """What changed between the spec a run was made with (its meta.json: ``fingerprint`` and
    ``backend``) and ``loaded``, in the sections that decide whether the run can resume, plus
    ``backend A -> B`` for another backend: empty when it can. The one test of a changed
    spec: ``run`` refuses what it finds, ``status``, ``results`` and ``diff`` say it."""
    changed = changed_sections(meta.get("fingerprint", {}), fingerprint(loaded))
    backend = meta.get("backend", loaded.spec.backend.type)
    if backend != loaded.spec.backend.type:
        changed.append(f"backend {backend} -> {loaded.spec.backend.type}")
    return changed


def made_with(loaded: LoadedSpec) -> dict[str, Any]:
    """What meta.json records of the spec a run is made with: what :func:`spec_changes`
    compares (``spec_changes(b, made_with(a))``: whether a run of ``a`` resumes as ``b``)."""
    return {"backend": loaded.spec.backend.type, "fingerprint": fingerprint(loaded)}


@dataclass(frozen=True)
class RunDir:
    """Paths of one run directory."""

    path: Path

    @classmethod
    def for_spec(cls, loaded: LoadedSpec) -> RunDir:
        storage = loaded.spec.storage
        root = Path(".sweepspec-runs") if loaded.spec.storage_is_url else Path(storage)
        return cls((root / loaded.spec.run_name).absolute())

    @property
    def meta_path(self) -> Path:
        return self.path / "meta.json"

    @property
    def spec_file(self) -> Path:
        return self.path / "spec.yaml"

    @property
    def resolved_spec(self) -> Path:
        return self.path / "spec.resolved.yaml"

    @property
    def trials_csv(self) -> Path:
        return self.path / "trials.csv"

    @property
    def best_yaml(self) -> Path:
        return self.path / "best.yaml"

    @property
    def summary(self) -> Path:
        return self.path / "summary.json"

    @property
    def plots(self) -> Path:
        return self.path / "plots"

    @property
    def report(self) -> Path:
        return self.path / "report.html"

    @property
    def trials(self) -> Path:
        return self.path / "trials"

    def trial_dir(self, trial_id: str) -> Path:
        return self.trials / trial_id

    @property
    def reports(self) -> Path:
        return self.path / "reports"

    def reports_file(self, trial_id: str) -> Path:
        """Every report of one trial (:mod:`sweepspec.run.history`)."""
        return self.reports / f"{trial_id}.jsonl"

    @staticmethod
    def error_file(trial_dir: Path, attempt: int) -> Path:
        """A failed attempt's message and traceback."""
        return trial_dir / f"error-{attempt}.txt"

    @staticmethod
    def failed_attempts(trial_dir: Path) -> int:
        """How many attempts of the trial failed so far (each left its error file)."""
        return sum(1 for _ in trial_dir.glob("error-*.txt"))

    # -- the optuna backend's --

    @property
    def journal(self) -> Path:
        return self.path / "study.journal"

    @property
    def workers(self) -> Path:
        return self.path / "workers"

    @property
    def gate(self) -> Path:
        return self.path / "gate.lock"

    @property
    def create_gate(self) -> Path:
        return self.path / "create.lock"

    # -- the ray backend's --

    @property
    def ledger_file(self) -> Path:
        return self.path / "ledger.jsonl"

    @property
    def experiment(self) -> Path:
        """The Ray experiment (``RunConfig(storage_path=<run dir>, name="tune")``): a fixed name,
        so that a re-run finds it (ray-project/ray#36062)."""
        return self.path / EXPERIMENT_NAME

    def exists(self) -> bool:
        return self.meta_path.exists()

    def read_meta(self) -> dict[str, Any]:
        try:
            data = json.loads(self.meta_path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SweepspecError(
                Problem(f"cannot read {self.meta_path}: {exc}", code="io")
            ) from None
        if not isinstance(data, dict):
            raise SweepspecError(Problem(f"{self.meta_path} is damaged", code="io"))
        return data

    def write_meta(self, meta: dict[str, Any]) -> None:
        atomic_write(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")

    def create(self, loaded: LoadedSpec, study_name: str) -> dict[str, Any]:
        """Make the directory and freeze the spec (what ran is saved beside the results)."""
        try:
            self.trials.mkdir(parents=True, exist_ok=True)
            self.workers.mkdir(exist_ok=True)
        except OSError as exc:
            raise SweepspecError(
                Problem(f"cannot create the run directory {self.path}: {exc.strerror}", code="io")
            ) from None
        atomic_write(self.spec_file, loaded.text)
        resolved = yaml.safe_dump(loaded.spec.dump(), sort_keys=False)
        atomic_write(self.resolved_spec, resolved)
        meta = {
            "name": loaded.spec.run_name,
            "study_name": study_name,
            **made_with(loaded),
            "created": time.time(),
            "sweep_id": uuid.uuid4().hex,
            "elapsed_s": 0.0,
        }
        self.write_meta(meta)
        return meta

    def remove_stale_temporaries(self) -> list[Path]:
        """Delete the temporary files (``.<name>.<pid>.tmp``) of an :func:`atomic_write` that a
        killed process left behind: its process is gone and it is older than a write takes
        (a worker on another host, over a shared directory, has pids of its own). Returns what
        went."""
        gone = []
        for tmp in self.path.glob(".*.tmp"):
            pid = tmp.name.rsplit(".", 2)[-2]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                if time.time() - tmp.stat().st_mtime < STALE_TMP_S:
                    continue
            tmp.unlink(missing_ok=True)
            gone.append(tmp)
        return gone

    def move_aside(self) -> Path:
        """Rename the run to ``<name>.old-<timestamp>`` (``--fresh`` keeps the old run)."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        target = self.path.with_name(f"{self.path.name}.old-{stamp}")
        n = 1
        while target.exists():
            n += 1
            target = self.path.with_name(f"{self.path.name}.old-{stamp}-{n}")
        self.path.rename(target)
        return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            half = len(text) // 2
            fh.write(text[:half])
            fh.flush()
            if path.name in ("trials.csv", "summary.json"):
                crash_point("mid_results_write", fh.fileno(), len(text[half:].encode()))
            fh.write(text[half:])
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SweepspecError(io_problem(f"cannot write {path}", exc)) from None
