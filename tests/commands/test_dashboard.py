"""``sweepspec dashboard``: optuna-dashboard served on a real run's storage, read through its
HTTP API; refused cleanly without the extra, without a run, and for a backend that keeps no
Optuna storage."""

from __future__ import annotations

import importlib.util
import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from sweepspec.cli import main
from sweepspec.load import load_spec
from sweepspec.run.rundir import RunDir
from tests.builders import curve_spec, env, run_ok, spec, wait_until, write_spec
from tests.conftest import unavailable

Capsys = pytest.CaptureFixture[str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _answers(url: str) -> bool:
    try:
        _get(url)
    except (OSError, ValueError):
        return False
    return True


def _request(url: str, method: str) -> int:
    request = urllib.request.Request(url, data=b"{}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


@pytest.mark.slow
def test_dashboard_serves_the_run_read_only_until_ctrl_c(tmp_path: Path, capsys: Capsys) -> None:
    if importlib.util.find_spec("optuna_dashboard") is None:
        unavailable("optuna-dashboard is not installed (sweepspec[dashboard])")
    data = curve_spec("dash", num_samples=3, epochs=2)
    write_spec(tmp_path, data)
    run_ok(tmp_path)
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "sweepspec", "dashboard", "spec.yaml", "--port", str(port)],
        cwd=tmp_path,
        env=env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert wait_until(lambda: proc.poll() is not None or _answers(f"{base}/api/studies"), 60)
        assert proc.poll() is None, proc.communicate(timeout=10)
        (study,) = _get(f"{base}/api/studies")["study_summaries"]
        assert study["study_name"] == "dash"
        assert study["directions"] == ["minimize"]
        detail = _get(f"{base}/api/studies/{study['study_id']}")
        assert detail["name"] == "dash"
        assert len(detail["trials"]) == 3
        assert {t["state"] for t in detail["trials"]} == {"Complete"}
        assert detail["objective_names"] == ["loss"]  # the study's metric names
        # the page itself, at the URL that was printed
        with urllib.request.urlopen(f"{base}/dashboard", timeout=5) as page:
            assert page.status == 200
        # read-only: the study cannot be deleted nor its trials told
        assert _request(f"{base}/api/studies/{study['study_id']}", "DELETE") == 403
        assert _request(f"{base}/api/trials/0/tell", "POST") == 403
        assert len(_get(f"{base}/api/studies")["study_summaries"]) == 1
        # a second dashboard on the same port: a clear error
        assert main(["dashboard", str(tmp_path / "spec.yaml"), "--port", str(port)]) == 1
        assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert err.strip() == "interrupted"
    assert f"{base}/dashboard/studies/{study['study_id']}" in out


def test_dashboard_without_a_run_says_so(tmp_path: Path, capsys: Capsys) -> None:
    write_spec(tmp_path, spec("never"))
    assert main(["dashboard", "spec.yaml"]) == 1
    err = capsys.readouterr().err
    assert "no run of 'never' yet" in err and "sweepspec run" in err
    assert "Traceback" not in err


def test_dashboard_without_the_extra_names_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Capsys
) -> None:
    write_spec(tmp_path, spec("t"))
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "optuna_dashboard" else real(name, *a),
    )
    assert main(["dashboard", "spec.yaml"]) == 1
    assert "pip install 'sweepspec[dashboard]'" in capsys.readouterr().err


def test_dashboard_of_a_ray_run_is_refused(tmp_path: Path, capsys: Capsys) -> None:
    """A Ray run keeps no Optuna storage (its run directory is made here, no Ray started)."""
    path = write_spec(tmp_path, spec("rayrun", "ray"))
    loaded = load_spec(path, [], feasibility=False)
    RunDir.for_spec(loaded).create(loaded, loaded.spec.run_name)
    assert main(["dashboard", "spec.yaml"]) == 1
    err = capsys.readouterr().err
    assert "the dashboard reads Optuna storages" in err
    assert "made by the ray backend" in err
    assert "Traceback" not in err


def test_dashboard_is_in_the_help(capsys: Capsys) -> None:
    assert main(["dashboard", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--port N" in out and "--host HOST" in out and "sweepspec[dashboard]" in out
