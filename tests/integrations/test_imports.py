"""The integrations stay optional: ``import sweepspec``, ``import sweepspec.integrations`` and
``sweepspec validate`` import none of their libraries (each module imports its own)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

LIBRARIES = ("transformers", "peft", "stable_baselines3", "sklearn", "torch", "gymnasium")

PROBE = """\
import sys
import sweepspec, sweepspec.integrations
from sweepspec.cli import main
assert main(["validate", "sweeps"]) == 0
print("LOADED", sorted({m.split(".")[0] for m in sys.modules} & set(%r)))
"""


def test_sweepspec_and_validate_import_no_integration_library() -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE % (LIBRARIES,)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "LOADED []" in done.stdout, done.stdout
