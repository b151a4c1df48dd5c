"""A sweep on a real two-node Ray cluster started on this machine (`ray start --head` and
`ray start --address=...`, one CPU each): trials are placed on both nodes."""

from __future__ import annotations

import csv
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sweepspec.backends.ray_backend.session import run_ray
from sweepspec.load import load_spec
from sweepspec.run.session import RunOptions
from tests import builders

pytestmark = pytest.mark.ray

REPO = Path(__file__).resolve().parents[3]
OBJECTIVES = builders.OBJECTIVES
RAY = str(Path(sys.executable).with_name("ray"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ray_start(args: list[str], node: str, log: Path) -> subprocess.Popen[bytes]:
    """``ray start`` in its own process group: the GCS, raylet and workers it leaves behind
    keep that group, so the finalizer can stop this cluster without ``ray stop --force``
    (which would stop every Ray on the machine)."""
    env = dict(
        os.environ,
        RAY_AUTH_MODE="disabled",
        SWEEPSPEC_TEST_NODE=node,
        RAY_USAGE_STATS_ENABLED="0",
        PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    )
    with open(log, "ab") as out:
        return subprocess.Popen(
            [RAY, "start", *args, "--num-cpus=1", "--num-gpus=0", "--disable-usage-stats"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _processes_of(groups: list[int]) -> list[Any]:
    import psutil

    out = []
    for p in psutil.process_iter():
        try:
            if os.getpgid(p.pid) in groups:
                out.append(p)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return out


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import psutil

    logs = tmp_path_factory.mktemp("cluster")
    port = _free_port()
    address = f"127.0.0.1:{port}"
    groups: list[int] = []
    try:
        head = _ray_start(
            ["--head", f"--port={port}", "--include-dashboard=false", "--num-cpus=1"],
            "head",
            logs / "head.log",
        )
        groups.append(head.pid)
        assert head.wait(timeout=120) == 0, (logs / "head.log").read_text()
        worker = _ray_start([f"--address={address}", "--num-cpus=1"], "worker", logs / "worker.log")
        groups.append(worker.pid)
        assert worker.wait(timeout=120) == 0, (logs / "worker.log").read_text()
        yield address
    finally:
        procs = _processes_of(groups)
        for pgid in groups:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except ProcessLookupError:
                continue
        _gone, alive = psutil.wait_procs(procs, timeout=15)
        for p in alive:
            p.kill()
        _forget_cluster(port)


def _forget_cluster(port: int) -> None:
    """``ray start --head`` records its address in /tmp/ray/ray_current_cluster, where a
    later ``ray.init()`` without an address would look for it; ``ray stop`` removes it, and
    so do we (only if it is still ours)."""
    current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        if current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    except OSError:
        pass


def test_trials_run_on_both_nodes(
    no_local_ray: None, cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ray

    monkeypatch.chdir(tmp_path)
    data = builders.spec(
        "cluster",
        "ray",
        objective={"function": f"{OBJECTIVES}:where", "config": {"sleep": 2.0}},
        space={"x": {"uniform": [0.0, 1.0]}},
        backend={"address": cluster},
    )
    spec = builders.write_spec(tmp_path, data, "cluster.yaml")
    deadline = time.monotonic() + 60
    while True:  # the worker node registers with the head shortly after `ray start` returns
        ray.init(address=cluster, log_to_driver=False)
        alive = [n for n in ray.nodes() if n.get("Alive")]
        ray.shutdown()
        if len(alive) == 2 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert len(alive) == 2
    outcome = run_ray(load_spec(spec), RunOptions())
    assert not ray.is_initialized()  # run_ray joined the cluster and left it
    assert outcome.reason == "done", outcome
    with open(tmp_path / "runs" / "cluster" / "trials.csv", newline="") as fh:
        table = list(csv.DictReader(fh))
    errors = [r.error for r in outcome.ledger.records.values() if r.error]
    assert len(table) == 4 and {r["state"] for r in table} == {"COMPLETE"}, errors
    # one CPU a node and two trials at once: both nodes run trials, whatever the load
    assert {r["node"] for r in table} == {"head", "worker"}, table
    assert len({r["actor_pid"] for r in table}) >= 2
