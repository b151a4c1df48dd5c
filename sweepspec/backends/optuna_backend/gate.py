"""The launch gate: the critical section in which a driver counts logical trials and asks for
the next one, so that every process on a study together runs exactly ``num_samples``.

* journal file or SQLite: every process on the study is on this machine (a journal or an
  SQLite file is not shared across machines), so a ``flock`` on ``<rundir>/gate.lock`` is
  enough (:class:`~sweepspec.backends.optuna_backend.lease.FileMutex`).
* PostgreSQL: processes on other machines share the study, and their run directories are
  their own. The gate is then the local ``flock`` (cheap, keeps local contenders off the
  database) plus ``pg_advisory_lock(key)`` on a dedicated connection, ``key`` derived from
  the study name. The connection is opened on first use and kept; if the server drops it, the
  session's lock goes with it and the next entry reconnects. Creating the schema and the
  study (``gate_for(..., study_name=None)``) takes a database-wide key and a separate local
  file (``create.lock``), so that a worker joining does not hold up the others' launches.
* MySQL storages get only the local ``flock``: one machine (or add ``GET_LOCK`` here).
"""

from __future__ import annotations

import contextlib
import hashlib
import re
from pathlib import Path
from types import TracebackType
from typing import Any

from sweepspec.backends.optuna_backend.lease import FileMutex
from sweepspec.errors import Problem, SweepspecError
from sweepspec.run.rundir import RunDir

__all__ = ["LocalGate", "PgAdvisoryGate", "advisory_key", "gate_for", "is_postgres_url"]

GATE_TIMEOUT_S = 120.0


def is_postgres_url(url: str | None) -> bool:
    return bool(url) and re.match(r"postgres(ql)?(\+\w+)?://", str(url)) is not None


def advisory_key(study_name: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (the same on every machine)."""
    digest = hashlib.sha256(f"sweepspec:{study_name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def libpq_url(url: str) -> str:
    """A SQLAlchemy URL (``postgresql+psycopg2://...``) as a libpq one (``postgresql://...``)."""
    return re.sub(r"^postgres(ql)?\+\w+://", "postgresql://", url)


class PgAdvisoryGate:
    """The local ``FileMutex`` and a PostgreSQL session-level advisory lock, taken in that
    order and released in reverse. Not re-entrant."""

    def __init__(
        self, url: str, study_name: str, rundir_gate: Path, timeout: float = GATE_TIMEOUT_S
    ) -> None:
        self._url = url  # may hold ${oc.env:...}: resolved at connect time
        self.key = advisory_key(study_name)
        self.local = FileMutex(rundir_gate, timeout=timeout)
        self.timeout = timeout
        self._conn: Any = None

    def _connect(self) -> Any:
        import psycopg2

        from sweepspec.credentials import mask_url, resolve_env, scrub

        try:
            conn = psycopg2.connect(
                libpq_url(resolve_env(self._url)),
                application_name="sweepspec-gate",
                connect_timeout=30,
            )
        except psycopg2.Error as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise SweepspecError(
                Problem(
                    f"cannot open the storage {mask_url(self._url)}: {scrub(first)[:300]}",
                    "storage",
                    code="storage",
                )
            ) from None
        conn.autocommit = True  # a session-level lock, outside any transaction
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = %s", (f"{int(self.timeout * 1000)}ms",))
        return conn

    def _lock(self) -> None:
        import psycopg2

        for attempt in (0, 1):
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            try:
                with self._conn.cursor() as cur:
                    cur.execute("SELECT pg_advisory_lock(%s)", (self.key,))
                return
            except psycopg2.errors.LockNotAvailable:
                raise SweepspecError(
                    Problem(
                        f"timed out after {self.timeout:g} s waiting for the sweep's database lock "
                        "(another sweepspec process holds it)",
                        code="lock-timeout",
                    )
                ) from None
            except psycopg2.OperationalError:
                self.close()  # the server dropped us (and our locks): reconnect once
                if attempt:
                    raise

    def _unlock(self) -> None:
        import psycopg2

        if self._conn is None or self._conn.closed:
            return
        try:
            with self._conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
        except psycopg2.Error:
            self.close()  # closing the session releases its locks

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):  # already broken
                self._conn.close()
            self._conn = None

    def __enter__(self) -> PgAdvisoryGate:
        self.local.acquire()
        try:
            self._lock()
        except BaseException:
            self.local.release()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            self._unlock()
        finally:
            self.local.release()


class LocalGate(FileMutex):
    """The journal/SQLite gate: a ``flock`` on ``<rundir>/gate.lock``."""

    def close(self) -> None:
        self.release()


def gate_for(
    storage_url: str | None,
    rundir: RunDir,
    study_name: str | None = None,
    timeout: float = GATE_TIMEOUT_S,
) -> LocalGate | PgAdvisoryGate:
    """The launch gate of a study.

    ``storage_url``: the spec's storage when it is a URL (``${oc.env:...}`` unresolved), None
    for the default journal. ``study_name``: whose launches to serialize; None for a
    database-wide lock (creating the schema and the study: concurrent creates race).
    Call ``close()`` when done (drops the database connection).
    """
    if is_postgres_url(storage_url):
        assert storage_url is not None
        if study_name is None:  # a worker joining must not hold up the launches of the others
            return PgAdvisoryGate(storage_url, "*create*", rundir.create_gate, timeout)
        return PgAdvisoryGate(storage_url, study_name, rundir.gate, timeout)
    return LocalGate(rundir.gate, timeout=timeout)
