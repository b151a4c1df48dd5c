"""The run directory ``<storage>/<name>/``: layout, the frozen spec, and the fingerprint that
decides whether a re-run resumes or must be refused.

Layout::

    spec.yaml            the spec file, verbatim
    spec.resolved.yaml   after extends, overrides and interpolation
    meta.json            fingerprint, study name, storage, cumulative run time
    study.journal        Optuna journal (optuna backend, default storage)
    trials/<id>/         per logical trial: log.txt, checkpoint.pkl, error-<attempt>.txt
    workers/             liveness leases of running sweepspec processes
    trials.csv  best.yaml  summary.json
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sweepspec.errors import Problem, SweepspecError
from sweepspec.load import LoadedSpec

__all__ = ["RunDir", "changed_sections", "fingerprint"]

# Sections whose change makes old results meaningless (DESIGN.md §4). Budget keys (trials,
# stop, resources, backend workers) may change freely: they extend or shrink the run.
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
    def journal(self) -> Path:
        return self.path / "study.journal"

    @property
    def workers(self) -> Path:
        return self.path / "workers"

    @property
    def gate(self) -> Path:
        return self.path / "gate.lock"

    def trial_dir(self, logical: str) -> Path:
        return self.path / "trials" / logical

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
            (self.path / "trials").mkdir(parents=True, exist_ok=True)
            self.workers.mkdir(exist_ok=True)
        except OSError as exc:
            raise SweepspecError(
                Problem(f"cannot create the run directory {self.path}: {exc.strerror}", code="io")
            ) from None
        atomic_write(self.path / "spec.yaml", loaded.text)
        resolved = yaml.safe_dump(loaded.spec.dump(), sort_keys=False)
        atomic_write(self.path / "spec.resolved.yaml", resolved)
        meta = {
            "name": loaded.spec.run_name,
            "study_name": study_name,
            "backend": loaded.spec.backend.type,
            "fingerprint": fingerprint(loaded),
            "created": time.time(),
            "sweep_id": uuid.uuid4().hex,
            "elapsed_s": 0.0,
        }
        self.write_meta(meta)
        return meta

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


def atomic_write(path: Path, text: str) -> None:
    """Write via a temporary file and rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise SweepspecError(
            Problem(f"cannot write {path}: {exc.strerror or exc}", code="io")
        ) from None
