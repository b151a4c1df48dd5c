"""Careless or hostile input, answered within seconds and in bounded memory, never echoing what
the environment holds: the classes of issue #10 that the reader and the checks answer."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sweepspec.errors import SweepspecError
from sweepspec.load import load_spec, load_text
from sweepspec.spec.interpolation import MAX_CHARS
from sweepspec.spec.source import MAX_BYTES, MAX_NODES
from tests.builders import REPO

HEAD = """\
sweepspec: 1
objective:
  function: m:f
  metric: loss
  mode: min
"""
SPACE = "space: {x: {uniform: [0, 1]}}\n"
CANARY = "canary-Xq83nVtz"


def _problems(text: str) -> list[tuple[str, str, int]]:
    with pytest.raises(SweepspecError) as info:
        load_text(text, "s.yaml")
    return [(p.path, p.message, p.location.line if p.location else 0) for p in info.value.problems]


# -- secrets: the environment is read only through the documented form -----------------------


@pytest.mark.parametrize(
    "config",
    [
        pytest.param('{r: oc.env, v: "${${objective.config.r}:SWEEPSPEC_T_CANARY}"}', id="nested"),
        pytest.param('{v: "${oc.env:SWEEPSPEC_T_CANARY}"}', id="env-outside-storage"),
        pytest.param('{v: "${oc.decode:SWEEPSPEC_T_CANARY}"}', id="other-resolver"),
        pytest.param('{v: "${objective.${objective.metric}}"}', id="nested-key"),
        pytest.param('{v: "${ oc.env : SWEEPSPEC_T_CANARY }"}', id="spaced"),
        pytest.param('{v: "${oc.select:SWEEPSPEC_T_CANARY}"}', id="select"),
    ],
)
def test_no_interpolation_reads_the_environment_outside_connection_strings(
    config: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SWEEPSPEC_T_CANARY", CANARY)
    problems = _problems(HEAD + f"  config: {config}\n" + SPACE)
    assert [p[0] for p in problems] == ["objective.config.v"]
    assert problems[0][2] == 6
    assert all(CANARY not in p[1] for p in problems)


def test_a_nested_resolver_is_refused_before_the_environment_is_touched(
    tmp_path: Path,
) -> None:
    """validate, then plan, in a process with a canary in its environment: the canary is in no
    output, and no file is written."""
    spec = tmp_path / "s.yaml"
    spec.write_text(
        HEAD + '  config: {r: oc.env, v: "${${objective.config.r}:SWEEPSPEC_T_CANARY}"}\n' + SPACE
    )
    env = {**os.environ, "SWEEPSPEC_T_CANARY": CANARY, "PYTHONPATH": str(REPO)}
    for command in ("validate", "plan"):
        proc = subprocess.run(
            [sys.executable, "-m", "sweepspec", command, str(spec)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 1 and "Traceback" not in proc.stderr
        assert CANARY not in proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.yaml"]


def test_a_literal_dollar_brace_is_written_with_a_backslash() -> None:
    text = HEAD + "  config: {v: '\\${not.a.ref}', w: \"${objective.metric}-x\"}\n" + SPACE
    config = load_text(text, "s.yaml").spec.objective.config
    assert config == {"v": "${not.a.ref}", "w": "loss-x"}


def test_a_storage_directory_from_the_environment_is_refused() -> None:
    problems = _problems(HEAD + SPACE + "storage: ${oc.env:HOME}\n")
    assert [(p[0], p[2]) for p in problems] == [("storage", 7)]
    assert "cannot come from the environment" in problems[0][1]


def test_references_inside_a_storage_url_resolve_and_env_stays_literal() -> None:
    text = (
        HEAD
        + "  config: {db: sweeps}\n"
        + SPACE
        + 'storage: "postgresql://u:${oc.env:PGPASSWORD}@h/${objective.config.db}"\n'
    )
    assert load_text(text, "s.yaml").spec.storage == "postgresql://u:${oc.env:PGPASSWORD}@h/sweeps"


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("postgresql://bob:hunter2@h/db", "hunter2"),
        ("postgresql://bob:p@ss@word@h/db", "p@ss@word"),
        ("postgresql://h/db?user=bob&password=hunter2", "hunter2"),
        ("postgresql://h/db?sslpassword=hunter2&application_name=x", "hunter2"),
    ],
)
def test_an_inline_secret_in_a_url_is_refused_and_never_shown(url: str, secret: str) -> None:
    problems = _problems(HEAD + SPACE + f"storage: '{url}'\n")
    assert [p[0] for p in problems] == ["storage"]
    assert "inline" in problems[0][1] and secret not in problems[0][1]


# -- exhaustion: seconds and bounded memory, whatever the input --------------------------------


def _bounded(func: object) -> tuple[float, int]:
    """Wall time of ``func()`` and the process's peak RSS growth (KiB), in a child process."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        started = time.monotonic()
        with contextlib.suppress(SweepspecError):
            func()  # type: ignore[operator]
        out = json.dumps(
            [
                time.monotonic() - started,
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before,
            ]
        )
        os.write(write, out.encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 4096):
        data += chunk
    os.waitpid(pid, 0)
    elapsed, grown = json.loads(data)
    return float(elapsed), int(grown)


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "x.yaml"
    os.mkfifo(fifo)
    with pytest.raises(SweepspecError, match="is a FIFO"):
        load_spec(fifo)


def test_a_link_to_dev_zero_is_refused_without_reading(tmp_path: Path) -> None:
    link = tmp_path / "z.yaml"
    link.symlink_to("/dev/zero")
    _, grown = _bounded(lambda: load_spec(link))
    with pytest.raises(SweepspecError, match="character device"):
        load_spec(link)
    assert grown < 50_000


def test_a_file_one_byte_too_large_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * (MAX_BYTES + 1))
    with pytest.raises(SweepspecError, match="too large"):
        load_spec(big)
    big.write_bytes(b"#" * MAX_BYTES)
    with pytest.raises(SweepspecError, match="empty"):  # read whole: it is all a comment
        load_spec(big)


def _doubling_strings(n: int) -> str:
    config = {"s0": "a" * 64}
    for i in range(1, n):
        config[f"s{i}"] = f"${{objective.config.s{i - 1}}}${{objective.config.s{i - 1}}}"
    return HEAD + f"  config: {json.dumps(config)}\n" + SPACE


def _multiplying_lists(n: int) -> str:
    config: dict[str, object] = {"l0": list(range(10))}
    for i in range(1, n):
        config[f"l{i}"] = [f"${{objective.config.l{i - 1}}}"] * 10
    return HEAD + f"  config: {json.dumps(config)}\n" + SPACE


@pytest.mark.parametrize(
    ("text", "key"),
    [
        pytest.param(_doubling_strings(40), "objective.config.s16", id="strings-double"),
        pytest.param(_multiplying_lists(12), "objective.config.l5", id="nodes-multiply"),
    ],
)
def test_interpolation_that_multiplies_is_refused_before_it_is_resolved(
    text: str, key: str
) -> None:
    assert len(text) < 4000  # a small file
    elapsed, grown = _bounded(lambda: load_text(text, "s.yaml"))
    problems = _problems(text)
    assert [p[0] for p in problems] == [key]
    assert "too large" in problems[0][1]
    assert str(MAX_NODES) in problems[0][1] and str(MAX_CHARS) in problems[0][1]
    assert elapsed < 5 and grown < 200_000  # seconds and megabytes, not minutes and gigabytes


def test_a_reference_loop_is_an_error() -> None:
    text = HEAD + '  config: {a: "${objective.config.b}", b: ["${objective.config.a}"]}\n' + SPACE
    problems = _problems(text)
    assert problems and "loop" in problems[0][1]


def test_a_large_plain_choice_list_is_no_alias_bomb(tmp_path: Path) -> None:
    values = ", ".join(str(i) for i in range(100_000))
    path = tmp_path / "big.yaml"
    path.write_text(HEAD + f"space:\n  x: {{choice: [{values}]}}\n")
    elapsed, _ = _bounded(lambda: load_spec(path))
    spec = load_spec(path).spec
    assert len(spec.space["x"].choice) == 100_000  # type: ignore[union-attr]
    assert elapsed < 10


def test_a_grid_searcher_over_a_huge_range_is_refused_with_its_size() -> None:
    text = HEAD + "space: {n: {int: [0, 1000000000000]}}\nsearcher: {type: grid}\n"
    elapsed, grown = _bounded(lambda: load_text(text, "s.yaml"))
    problems = _problems(text)
    assert [p[0] for p in problems] == ["searcher.type"]
    assert "1000000000001 configs" in problems[0][1]
    assert elapsed < 5 and grown < 100_000
