"""Crash points count the hits of each trial, also in a process reused for the next one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

SCRIPT = """
from sweepspec.run.crash import crash_point, new_trial
crash_point("mid_checkpoint_write"); crash_point("mid_checkpoint_write")
new_trial()  # a reused trial process starts its next trial
crash_point("mid_checkpoint_write"); crash_point("mid_checkpoint_write")
print("second trial ran past 2 hits", flush=True)
crash_point("mid_checkpoint_write")  # its 3rd hit
print("not reached", flush=True)
"""


def test_hits_are_counted_per_trial_and_the_nth_kills() -> None:
    env = {**os.environ, "SWEEPSPEC_CRASH_AT": "mid_checkpoint_write:3"}
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.stdout.splitlines() == ["second trial ran past 2 hits"], proc.stderr
    assert proc.returncode == -signal.SIGKILL
