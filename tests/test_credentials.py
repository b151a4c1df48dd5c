"""``${oc.env:...}`` in connection strings, resolved when connecting."""

from __future__ import annotations

import pytest

from sweepspec.credentials import resolve_env
from sweepspec.errors import SweepspecError


def test_variables_and_defaults_are_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SWEEPSPEC_T_PW", "s3cret")
    monkeypatch.delenv("SWEEPSPEC_T_HOST", raising=False)
    url = "postgresql://u:${oc.env:SWEEPSPEC_T_PW}@${oc.env:SWEEPSPEC_T_HOST,localhost}/db"
    assert resolve_env(url) == "postgresql://u:s3cret@localhost/db"
    assert resolve_env("sqlite:///plain.db") == "sqlite:///plain.db"


def test_an_unset_variable_names_the_key_and_masks_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SWEEPSPEC_T_TOKEN", raising=False)
    url = "https://user:hunter2@mlflow.example/${oc.env:SWEEPSPEC_T_TOKEN}"
    with pytest.raises(SweepspecError) as info:
        resolve_env(url, "tracking.mlflow.tracking_uri")
    (problem,) = info.value.problems
    assert problem.path == "tracking.mlflow.tracking_uri"
    assert "SWEEPSPEC_T_TOKEN is not set" in problem.message
    assert "hunter2" not in problem.message
