"""``ledger.jsonl``: the Ray backend's exactly-once record of a run's trials, appended by the
driver's callback only; ``status``, ``results`` and a resume read it."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sweepspec.errors import SweepspecError, io_problem
from sweepspec.records import TrialRecord
from sweepspec.run.crash import crash_point
from sweepspec.run.ledger import Ledger

__all__ = ["LedgerFile", "record_from"]


class LedgerFile:
    """``ledger.jsonl``: one JSON object a line, appended by the driver only.

    ``{"event": "start", "ray_id", "trial_id", "params", "started_at"}`` when a trial first
    starts and ``{"event": "end", "ray_id", "trial_id", "state", "metrics", "params", "config",
    "iterations", "duration_s", "attempts", "error", "started_at", "ended_at"}`` when it ends
    (fsynced), or
    ``{"event": "drop", "ray_id"}`` when a resume finds that a trial which had started but not
    ended is unknown to Ray's last snapshot (it is started over as a new trial). The first end
    of a Ray trial id is final: a trial that Ray runs again after a restore is never recorded
    twice. A torn last line (the driver was killed while writing) is ignored."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def events(self) -> list[dict[str, Any]]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out = []
        for line in data.splitlines():
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "ray_id" in item:
                out.append(item)
        return out

    def ends(self) -> dict[str, dict[str, Any]]:
        """Terminal records by Ray trial id (the first one wins)."""
        out: dict[str, dict[str, Any]] = {}
        for e in self.events():
            if e.get("event") == "end" and e["ray_id"] not in out:
                out[e["ray_id"]] = e
        return out

    def end_of(self, ray_id: str) -> dict[str, Any] | None:
        """The terminal record of one Ray trial id, or None: what a trainable checks when it
        starts. Only the lines that name ``ray_id`` are parsed (a substring scan), so the
        check stays cheap however long the ledger grows."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        needle = json.dumps(ray_id).encode()
        if needle not in data:
            return None
        for line in data.splitlines():
            if needle not in line:
                continue
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if (
                isinstance(item, dict)
                and item.get("ray_id") == ray_id
                and item.get("event") == "end"
            ):
                return item
        return None

    def append(self, item: dict[str, Any], *, sync: bool) -> None:
        """Append one event, whole or not at all (a full disk: what was written of it is cut
        off, so that the next event does not glue onto it), and raise a clean error."""
        data = (json.dumps(item, default=str, allow_nan=True) + "\n").encode()
        end = -1
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            try:
                end = os.fstat(fd).st_size
                crash_point("before_record_append", fd, len(data))
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                if sync:
                    os.fsync(fd)
            except OSError:
                if end >= 0:
                    with contextlib.suppress(OSError):
                        os.ftruncate(fd, end)
                raise
            finally:
                os.close(fd)
        except OSError as exc:
            raise SweepspecError(io_problem(f"cannot append to {self.path}", exc)) from None
        crash_point("after_record_append")

    def ledger(self) -> Ledger:
        """Fold the events into logical trials (display ids), as the Optuna ledger does."""
        return self._fold()[1]

    def trial_ids(self) -> dict[str, str]:
        """Display trial id by Ray trial id, of the trials not dropped."""
        return self._fold()[0]

    def _fold(self) -> tuple[dict[str, str], Ledger]:
        ledger = Ledger()
        ids: dict[str, str] = {}
        for e in self.events():
            ray_id = e["ray_id"]
            if e.get("event") == "drop":  # its id is free again: the trial that replaces it
                tid = ids.pop(ray_id, None)
                record = ledger.records.get(tid) if tid is not None else None
                if tid is not None and record is not None and record.state == "RUNNING":
                    del ledger.records[tid]
                    ledger.in_flight.discard(tid)
                continue
            tid = ids.get(ray_id)
            if tid is None:
                tid = ids[ray_id] = _unique_id(str(e.get("trial_id", ray_id)), ray_id, ids)
            previous = ledger.records.get(tid)
            if previous is not None and previous.state != "RUNNING":
                continue
            if e.get("event") == "end":
                ledger.records[tid] = record_from(e, tid)
                ledger.in_flight.discard(tid)
            elif previous is None:
                params = dict(e.get("params") or {})
                started = e.get("started_at")
                ledger.records[tid] = TrialRecord(tid, "RUNNING", params=params, started_at=started)
                ledger.in_flight.add(tid)
        return ids, ledger


def _unique_id(wanted: str, ray_id: str, ids: Mapping[str, str]) -> str:
    return ray_id if wanted in ids.values() else wanted


def record_from(e: Mapping[str, Any], tid: str) -> TrialRecord:
    return TrialRecord(
        trial_id=tid,
        state=str(e.get("state", "FAILED")),
        metrics=dict(e.get("metrics") or {}),
        params=dict(e.get("params") or {}),
        config=dict(e.get("config") or {}),
        iterations=int(e.get("iterations") or 0),
        duration_s=e.get("duration_s"),
        attempts=int(e.get("attempts") or 1),
        error=e.get("error"),
        started_at=e.get("started_at"),
        ended_at=e.get("ended_at"),
    )
