"""Several driver processes on one study (reliability plan T5): ``sweepspec run`` plus
``sweepspec worker`` processes on the journal, SQLite and PostgreSQL storages.

Invariants checked after every sweep: exactly the budget of logical trials is terminal (no
overshoot), trial numbers and ids are unique and contiguous, nothing is left RUNNING or
WAITING, ``try_first`` configs and grid points run exactly as often as they should, no
param set runs twice, and trials really ran at the same time in different processes.

The PostgreSQL tests use ``$SWEEPSPEC_PG_URL`` when set (``scripts/test`` starts a server and
sets it), else start a throwaway server with ``scripts/postgres``; each test gets a fresh
database.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from tests.conftest import unavailable

pytest.importorskip("optuna")

import optuna

from sweepspec.backends.optuna_backend.gate import LocalGate, PgAdvisoryGate, advisory_key, gate_for
from sweepspec.backends.optuna_backend.runner import (
    HEARTBEAT_GRACE_S,
    RECOVER_EVERY_S,
    heartbeat_fresh,
)
from sweepspec.backends.optuna_backend.tally import tally
from sweepspec.errors import SweepspecError
from sweepspec.run.rundir import RunDir
from tests.builders import env as base_env
from tests.builders import spec, wait_until, write_spec

REPO = Path(__file__).resolve().parents[3]
TRY_FIRST = [{"x": 0.123, "g": "a"}, {"x": 0.456, "g": "b"}]

OBJECTIVE = """
import glob, json, os, time, uuid

def _write(path, data):
    with open(path + ".tmp", "w") as fh:
        json.dump(data, fh)
    os.replace(path + ".tmp", path)

def main(config, trial):
    rec = os.environ["SWEEPSPEC_TEST_RECORDS"]
    tag = uuid.uuid4().hex
    mark = {"pid": os.getpid(), "ppid": os.getppid(), "t0": time.time(), "x": config["x"]}
    _write(os.path.join(rec, f"start-{tag}.json"), mark)
    # barrier: hold the first trials until SWEEPSPEC_TEST_DRIVERS drivers each run one
    want, deadline = int(os.environ.get("SWEEPSPEC_TEST_DRIVERS", "1")), time.time() + 60
    while time.time() < deadline:
        drivers = set()
        for f in glob.glob(os.path.join(rec, "start-*.json")):
            with open(f) as fh:
                drivers.add(json.load(fh)["ppid"])
        if len(drivers) >= want:
            break
        time.sleep(0.05)
    time.sleep(float(os.environ.get("SWEEPSPEC_TEST_SLEEP", "0.3")))
    mark["t1"] = time.time()
    mark["g"] = config.get("g")
    _write(os.path.join(rec, f"done-{tag}.json"), mark)
    return {"loss": (config["x"] - 0.5) ** 2}
"""


# -- fixtures and helpers ------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The URL of a PostgreSQL server (password-less ``postgres`` user) we may create
    databases on."""
    url = os.environ.get("SWEEPSPEC_PG_URL")
    started: Path | None = None
    if not url:
        script = REPO / "scripts" / "postgres"
        # not under pytest's tmp dir: the postgres OS user must be able to reach it
        data = Path(tempfile.mkdtemp(prefix="sweepspec-pg-test-")) / "data"
        data.parent.chmod(0o755)
        port = os.environ.get("SWEEPSPEC_TEST_PG_PORT", "55439")
        proc = subprocess.run(
            [str(script), str(data)],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
            env={**os.environ, "SWEEPSPEC_PG_PORT": port},
        )
        if proc.returncode != 0 or not proc.stdout.strip():
            unavailable(
                f"PostgreSQL could not be installed or started by scripts/postgres: "
                f"{(proc.stderr.strip().splitlines() or ['?'])[-1]}"
            )
        url, started = proc.stdout.strip().splitlines()[-1], data
    yield url
    if started is not None:
        subprocess.run(
            [str(REPO / "scripts" / "postgres"), "stop", str(started)],
            capture_output=True,
            timeout=120,
            check=False,
        )
        shutil.rmtree(started.parent, ignore_errors=True)


def _admin(url: str) -> Any:
    import psycopg2

    from sweepspec.backends.optuna_backend.gate import libpq_url

    conn = psycopg2.connect(libpq_url(url), connect_timeout=10)
    conn.autocommit = True
    return conn


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the server; dropped afterwards."""
    pytest.importorskip("psycopg2")
    name = f"sweepspec_t{uuid.uuid4().hex[:12]}"
    base, _, _ = pg_server.rpartition("/")
    conn = _admin(pg_server)
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    yield f"{base}/{name}"
    conn = _admin(pg_server)
    try:
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        conn.close()


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    out = base_env()
    out["SWEEPSPEC_TEST_RECORDS"] = str(tmp_path / "rec")
    out.update(extra)
    return out


def _spec(tmp_path: Path, name: str, storage: str, per_point: int, *, grid: bool = True) -> None:
    (tmp_path / "rec").mkdir(exist_ok=True)
    (tmp_path / "obj.py").write_text(OBJECTIVE, encoding="utf-8")
    data = spec(
        name,
        objective={"function": "obj.py:main"},
        space={"x": {"uniform": [0.0, 1.0]}},
        trials={"num_samples": per_point},
        resources={"max_concurrent": 1},  # one trial a process: concurrency is processes
        storage=storage,
    )
    if grid:
        data["space"]["g"] = {"grid": ["a", "b"]}
        data["try_first"] = TRY_FIRST
    write_spec(tmp_path, data)


_STARTED: list[Any] = []


@pytest.fixture(autouse=True)
def _reap() -> Iterator[None]:
    """A failed test leaves no sweepspec process behind."""
    yield
    while _STARTED:
        p = _STARTED.pop()
        if p.returncode is None:
            _kill(p)


def _start(tmp_path: Path, command: str, env: dict[str, str], *args: str) -> Any:
    p = subprocess.Popen(
        [sys.executable, "-m", "sweepspec", command, "spec.yaml", *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    _STARTED.append(p)
    return p


def _finish(procs: list[Any], timeout: float = 90) -> list[str]:
    """Wait for all; assert each exited 0 without a traceback; their stdout + stderr."""
    deadline = time.monotonic() + timeout
    failures = []
    outputs = []
    for p in procs:
        try:
            out, err = p.communicate(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            out, err = _kill(p)
            failures.append(f"pid {p.pid} timed out\n{err}")
            continue
        outputs.append(out + err)
        if p.returncode != 0 or "Traceback" in err:
            failures.append(f"{' '.join(p.args[2:4])} exit {p.returncode}\n{out}\n{err}")
    assert not failures, "\n\n".join(failures)
    return outputs


def _kill(p: Any) -> tuple[str, str]:
    """SIGKILL the process group of ``p``; its (stdout, stderr)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(p.pid, signal.SIGKILL)
    out, err = p.communicate(timeout=30)
    return out, err


def _records(tmp_path: Path, kind: str) -> list[dict[str, Any]]:
    return [json.loads(f.read_text()) for f in sorted((tmp_path / "rec").glob(f"{kind}-*.json"))]


def _machine(tmp_path: Path, i: int) -> Path:
    """The working directory of "machine" ``i`` (0: ``tmp_path``): a copy of the spec and the
    objective, hence its own run directory, leases and local gate file, as on another host
    (the records directory is shared)."""
    if i == 0:
        return tmp_path
    d = tmp_path / f"m{i}"
    if not d.exists():
        d.mkdir()
        for f in ("spec.yaml", "obj.py"):
            shutil.copy(tmp_path / f, d / f)
    return d


def _sweep(tmp_path: Path, n: int, env: dict[str, str], *, machines: bool = False) -> list[str]:
    """``sweepspec run``, then (once it runs trials) ``n - 1`` workers at once; all finish.
    The first trials wait until all ``n`` drivers run one (a barrier in the objective).
    ``machines``: each process in its own working directory (see :func:`_machine`)."""
    env = {**env, "SWEEPSPEC_TEST_DRIVERS": str(n)}
    procs = [_start(tmp_path, "run", env)]
    assert wait_until(lambda: _records(tmp_path, "start") or procs[0].poll() is not None, 60)
    procs += [_start(_machine(tmp_path, i if machines else 0), "worker", env) for i in range(1, n)]
    return _finish(procs)


def _open_study(tmp_path: Path, name: str, storage: str) -> tuple[Any, Any]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if "://" not in storage:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        journal = tmp_path / storage / name / "study.journal"
        st: Any = JournalStorage(JournalFileBackend(str(journal)))
    else:
        from sweepspec.backends.optuna_backend.storage import sqlalchemy_url
        from sweepspec.credentials import resolve_env

        st = optuna.storages.RDBStorage(sqlalchemy_url(resolve_env(storage)))
    return optuna.load_study(study_name=name, storage=st), st


def _close(storage: Any) -> None:
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def _check_exact(
    tmp_path: Path, name: str, storage: str, per_point: int, *, grid: bool = True, reruns: int = 0
) -> list[Any]:
    """Assert the invariants; the study's trials."""
    study, st = _open_study(tmp_path, name, storage)
    try:
        trials = study.get_trials(deepcopy=True)
    finally:
        _close(st)
    total = per_point * (2 if grid else 1)
    states = Counter(t.state.name for t in trials)
    assert states["RUNNING"] == 0 and states["WAITING"] == 0, states
    numbers = sorted(t.number for t in trials)
    assert numbers == list(range(len(trials))), "trial numbers not unique and contiguous"
    assert len({t._trial_id for t in trials}) == len(trials)
    ledger = tally(trials)
    assert len(ledger.records) == total, f"{len(ledger.records)} logical trials, want {total}"
    assert ledger.finished == total and not ledger.in_flight
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    assert len(complete) == total, states  # every attempt that ran to the end: no overshoot
    assert Counter(str(t.user_attrs["logical"]) for t in complete) == Counter(ledger.records.keys())
    keys = [tuple(sorted(t.params.items())) for t in complete]
    assert len(set(keys)) == total, "a param set ran twice"
    if grid:
        assert Counter(t.params["g"] for t in complete) == {"a": per_point, "b": per_point}
        for point in TRY_FIRST:
            hits = [t for t in complete if t.params == point]
            assert len(hits) == 1, f"try_first {point} ran {len(hits)} times"
    # each objective call that ran to its end is exactly one COMPLETE trial
    done = _records(tmp_path, "done")
    assert len(done) == total + reruns
    rows = (_rundir(tmp_path, name, storage) / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + total
    return complete


def _assert_concurrent(tmp_path: Path, drivers: int) -> None:
    """Trials ran in ``drivers`` different driver processes, some of them at the same time."""
    done = _records(tmp_path, "done")
    by_driver = {r["ppid"] for r in done}
    assert len(by_driver) >= drivers, f"trials ran under {len(by_driver)} drivers"
    overlap = any(
        a["ppid"] != b["ppid"] and a["t0"] < b["t1"] and b["t0"] < a["t1"]
        for a in done
        for b in done
    )
    assert overlap, "no two trials of different processes overlapped in time"


def _rundir(tmp_path: Path, name: str, storage: str) -> Path:
    root = tmp_path / (".sweepspec-runs" if "://" in storage else storage)
    return root / name


# -- journal and SQLite ----------------------------------------------------------------------


@pytest.mark.parametrize("n", [2, 4])
def test_journal_workers_exact(tmp_path: Path, n: int) -> None:
    name = f"journal-{n}"
    _spec(tmp_path, name, "runs", per_point=5)
    _sweep(tmp_path, n, _env(tmp_path))
    _check_exact(tmp_path, name, "runs", per_point=5)
    _assert_concurrent(tmp_path, n)


def test_sqlite_workers_exact(tmp_path: Path) -> None:
    storage = f"sqlite:///{tmp_path / 's.db'}"
    _spec(tmp_path, "lite", storage, per_point=2)
    _sweep(tmp_path, 3, _env(tmp_path))
    _check_exact(tmp_path, "lite", storage, per_point=2)
    _assert_concurrent(tmp_path, 3)


@pytest.mark.parametrize(
    "storage", ["journal", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_worker_churn(tmp_path: Path, storage: str, request: pytest.FixtureRequest) -> None:
    """SIGKILL one worker mid-trial, start another: counts stay exact and the killed
    worker's trial runs again with the same params, at once (its lease is free; on
    PostgreSQL the victim runs in another run directory, found through ``lease_dir``)."""
    import psutil

    storage = "runs" if storage == "journal" else request.getfixturevalue("pg_url")
    _spec(tmp_path, "churn", storage, per_point=3)
    env = _env(tmp_path, SWEEPSPEC_TEST_SLEEP="1.0")
    run = _start(tmp_path, "run", env)
    assert wait_until(lambda: _records(tmp_path, "start"), 60)
    victim = _start(_machine(tmp_path, 0 if storage == "runs" else 1), "worker", env)
    other = _start(tmp_path, "worker", env)

    def victim_busy() -> list[dict[str, Any]]:
        finished = {r["pid"] for r in _records(tmp_path, "done")}
        return [
            r
            for r in _records(tmp_path, "start")
            if r["ppid"] == victim.pid and r["pid"] not in finished
        ]

    assert wait_until(victim_busy, 60), "the victim never started a trial"
    lost = victim_busy()[0]
    _kill(victim)  # the driver's group; its trial process dies with it (PDEATHSIG)
    assert wait_until(lambda: not psutil.pid_exists(lost["pid"]), 10)
    late = _start(tmp_path, "worker", env)
    _finish([run, other, late])
    complete = _check_exact(tmp_path, "churn", storage, per_point=3)
    rerun = [t for t in complete if t.params["x"] == lost["x"]]
    assert len(rerun) == 1 and "requeue_of" in rerun[0].user_attrs
    study, st = _open_study(tmp_path, "churn", storage)
    try:
        orphan = study.trials[rerun[0].user_attrs["requeue_of"]]
    finally:
        _close(st)
    assert orphan.state.name == "FAIL" and orphan.user_attrs.get("orphaned")
    assert orphan.params == rerun[0].params
    assert orphan.user_attrs["logical"] == rerun[0].user_attrs["logical"]


# -- PostgreSQL ------------------------------------------------------------------------------


@pytest.mark.postgres
def test_postgres_workers_exact(tmp_path: Path, pg_url: str) -> None:
    """Four drivers, each in its own run directory (as on four machines): only the database
    lock keeps them from overshooting."""
    _spec(tmp_path, "pg", pg_url, per_point=3)
    _sweep(tmp_path, 4, _env(tmp_path), machines=True)
    _check_exact(tmp_path, "pg", pg_url, per_point=3)
    _assert_concurrent(tmp_path, 4)


@pytest.mark.postgres
def test_status_and_results_read_a_plain_postgresql_url(tmp_path: Path, pg_url: str) -> None:
    """``status`` and ``results`` open a database storage through the code ``run`` uses: a
    bare ``postgresql://`` URL names the installed driver (it was a traceback, "No module
    named 'psycopg'", exit 3)."""
    assert pg_url.startswith("postgresql://")
    _spec(tmp_path, "pgread", pg_url, per_point=2, grid=False)
    _finish([_start(tmp_path, "run", _env(tmp_path, SWEEPSPEC_TEST_DRIVERS="1"))])
    for command in (
        ["status", "spec.yaml", "--format", "json"],
        ["results", "spec.yaml", "--format", "json"],
    ):
        proc = subprocess.run(
            [sys.executable, "-m", "sweepspec", *command],
            cwd=tmp_path,
            env=_env(tmp_path),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert "Traceback" not in proc.stderr
        data = json.loads(proc.stdout)
        assert data["trials"]["COMPLETE"] == 2, data


@pytest.mark.postgres
def test_postgres_url_from_env(tmp_path: Path, pg_url: str) -> None:
    """``${oc.env:...}`` in the storage URL is resolved when connecting, by every process;
    the values never reach the run directory. (Trust auth ignores the password, which makes
    it a canary here.)"""
    base, _, db = pg_url.rpartition("/")
    host = base.split("@", 1)[1]
    canary = f"canary{uuid.uuid4().hex[:8]}"
    storage = (
        "postgresql://postgres:${oc.env:SWEEPSPEC_TEST_PGPASSWORD}@"
        + host
        + "/${oc.env:SWEEPSPEC_TEST_PGDB}"
    )
    _spec(tmp_path, "pgenv", storage, per_point=2)
    missing = subprocess.run(
        [sys.executable, "-m", "sweepspec", "worker", "spec.yaml"],
        cwd=tmp_path,
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert missing.returncode == 1, missing.stderr
    assert "SWEEPSPEC_TEST_PGPASSWORD is not set" in missing.stderr
    env = _env(tmp_path, SWEEPSPEC_TEST_PGPASSWORD=canary, SWEEPSPEC_TEST_PGDB=db)
    outputs = _sweep(tmp_path, 2, env)
    os.environ["SWEEPSPEC_TEST_PGPASSWORD"], os.environ["SWEEPSPEC_TEST_PGDB"] = canary, db
    try:
        _check_exact(tmp_path, "pgenv", storage, per_point=2)
    finally:
        del os.environ["SWEEPSPEC_TEST_PGPASSWORD"], os.environ["SWEEPSPEC_TEST_PGDB"]
    _assert_concurrent(tmp_path, 2)
    rundir = _rundir(tmp_path, "pgenv", storage)
    for f in rundir.rglob("*"):
        if f.is_file() and f.suffix != ".lock":
            text = f.read_text(errors="replace")
            assert canary not in text and db not in text, f
    assert "${oc.env:SWEEPSPEC_TEST_PGDB}" in (rundir / "spec.resolved.yaml").read_text()
    for text in outputs:
        assert canary not in text


@pytest.mark.postgres
def test_postgres_other_host_trial_heartbeat(tmp_path: Path, pg_url: str) -> None:
    """A RUNNING trial owned by another machine is left alone while its heartbeat is fresh;
    a running driver re-runs it once the heartbeat is older than the grace period."""
    _spec(tmp_path, "ghost", pg_url, per_point=1, grid=False)
    env = _env(tmp_path)
    _finish([_start(tmp_path, "run", env)])
    study, st = _open_study(tmp_path, "ghost", pg_url)
    try:
        ghost = study.ask()
        x = ghost.suggest_float("x", 0.0, 1.0)
        for key, value in (
            ("logical", str(ghost.number)),
            ("attempt", 0),
            ("owner", "elsewhere.example:0123abcd"),
            ("heartbeat", time.time()),
        ):
            ghost.set_user_attr(key, value)
    finally:
        _close(st)
    # the budget (2) is 1 done + the ghost: the driver waits for the ghost, does not steal it
    driver = _start(tmp_path, "run", env, "trials.num_samples=2")
    assert wait_until(
        lambda: (
            (_rundir(tmp_path, "ghost", pg_url) / "workers").is_dir()
            and any((_rundir(tmp_path, "ghost", pg_url) / "workers").iterdir())
        ),
        60,
    )
    time.sleep(1.5)
    assert driver.poll() is None, "the driver gave up on a trial that is still alive"
    study, st = _open_study(tmp_path, "ghost", pg_url)
    try:
        assert study.trials[ghost.number].state.name == "RUNNING"
        assert len(study.trials) == 2
        # the other machine stops stamping: after the grace period the trial is an orphan
        study._storage.set_trial_user_attr(
            ghost._trial_id, "heartbeat", time.time() - HEARTBEAT_GRACE_S - 5
        )
    finally:
        _close(st)
    _finish([driver], timeout=RECOVER_EVERY_S + 60)
    complete = _check_exact(tmp_path, "ghost", pg_url, per_point=2, grid=False)
    study, st = _open_study(tmp_path, "ghost", pg_url)
    try:
        old = study.trials[ghost.number]
    finally:
        _close(st)
    assert old.state.name == "FAIL" and old.user_attrs.get("orphaned")
    rerun = [t for t in complete if t.user_attrs.get("requeue_of") == ghost.number]
    assert len(rerun) == 1 and rerun[0].params["x"] == x


@pytest.mark.postgres
def test_pg_advisory_gate_excludes_other_machines(tmp_path: Path, pg_url: str) -> None:
    """Two gates with different local lock files (as on two machines) on one study exclude
    each other through the database; another study's gate does not wait; a timeout is a
    clear error."""
    a = PgAdvisoryGate(pg_url, "study", tmp_path / "m1" / "gate.lock")
    b = PgAdvisoryGate(pg_url, "study", tmp_path / "m2" / "gate.lock")
    c = PgAdvisoryGate(pg_url, "other", tmp_path / "m3" / "gate.lock")
    quick = PgAdvisoryGate(pg_url, "study", tmp_path / "m4" / "gate.lock", timeout=0.3)
    events: list[str] = []
    try:
        with a:
            entered = threading.Event()

            def contender() -> None:
                with b:
                    events.append("b in")
                entered.set()

            thread = threading.Thread(target=contender)
            thread.start()
            with c:
                events.append("c in")
            with pytest.raises(SweepspecError, match="database lock"):
                quick.__enter__()
            time.sleep(0.3)
            events.append("a out")
        assert entered.wait(10)
        thread.join(10)
        assert events == ["c in", "a out", "b in"]
        with a:  # the connection is reused and the lock was released
            pass
    finally:
        for g in (a, b, c, quick):
            g.close()


# -- units -----------------------------------------------------------------------------------


def test_gate_kinds(tmp_path: Path) -> None:
    rd = RunDir(tmp_path / "r")
    assert isinstance(gate_for(None, rd, "s"), LocalGate)
    assert isinstance(gate_for(f"sqlite:///{tmp_path}/x.db", rd, "s"), LocalGate)
    pg = gate_for("postgresql+psycopg2://u@h/db", rd, "s")
    assert isinstance(pg, PgAdvisoryGate) and pg.key == advisory_key("s")
    assert isinstance(gate_for("postgresql://u:${oc.env:PW}@h/db", rd), PgAdvisoryGate)
    keys = {advisory_key(f"s{i}") for i in range(100)}
    assert len(keys) == 100 and all(-(2**63) <= k < 2**63 for k in keys)
    with gate_for(None, rd, "s"):
        assert (tmp_path / "r" / "gate.lock").exists()


def test_heartbeat_fresh() -> None:
    from datetime import datetime

    now = time.time()

    def trial(**attrs: Any) -> Any:
        return SimpleNamespace(user_attrs=attrs, datetime_start=datetime.fromtimestamp(now - 5))

    assert heartbeat_fresh(trial(heartbeat=now - 1), now)
    assert not heartbeat_fresh(trial(heartbeat=now - HEARTBEAT_GRACE_S - 1), now)
    assert heartbeat_fresh(trial(), now)  # not stamped yet: its start time counts
    assert not heartbeat_fresh(trial(), now + HEARTBEAT_GRACE_S + 10)
