"""A trial's log is bounded once the trial has ended: its head, a marker, its end."""

from __future__ import annotations

from pathlib import Path

from sweepspec.run.trial_log import LOG_CAP, LOG_HEAD, cap_log


def test_a_long_log_keeps_its_head_and_its_end(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    lines = [f"line {i:08d} " + "z" * 100 + "\n" for i in range(150_000)]  # ~17 MB
    log.write_text("".join(lines))
    assert not cap_log(log, running=True)  # a running trial's log is cut only far later
    assert cap_log(log)
    text = log.read_text()
    assert len(text.encode()) <= LOG_CAP
    head, found, tail = text.partition("\n[sweepspec: output dropped here")
    assert found and head.encode() == "".join(lines).encode()[:LOG_HEAD].rstrip(b"\n")
    kept = tail.split("]\n", 1)[1]
    assert kept.endswith(lines[-1]) and kept.startswith("line ")  # whole lines, to the end
    assert not cap_log(log)  # within the cap now


def test_a_short_log_is_left_alone(tmp_path: Path) -> None:
    log = tmp_path / "log.txt"
    log.write_text("hello\n")
    assert not cap_log(log) and log.read_text() == "hello\n"
    assert not cap_log(tmp_path / "missing.txt")
