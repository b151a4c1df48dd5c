"""``${oc.env:...}`` in connection strings, resolved when connecting."""

from __future__ import annotations

import pytest

from sweepspec.credentials import inline_secret, mask_url, resolve_env, scrub
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


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("postgresql://bob:hunter2@h:5432/db", "postgresql://bob:***@h:5432/db"),
        ("postgresql://bob:p@ss@word@h/db", "postgresql://bob:***@h/db"),
        ("postgresql://h/db?user=bob&password=hunter2", "postgresql://h/db?user=bob&password=***"),
        ("https://h/x?token=abc&a=1#frag", "https://h/x?token=***&a=1#frag"),
        ("postgresql://u:${oc.env:PW}@h/db", "postgresql://u:${oc.env:PW}@h/db"),
        ("sqlite:///runs/x.db", "sqlite:///runs/x.db"),
        ("postgresql://u:pw@h:notaport/db", "postgresql://***"),
    ],
)
def test_mask_url_hides_every_secret(url: str, masked: str) -> None:
    assert mask_url(url) == masked


def test_scrub_masks_urls_inside_a_message() -> None:
    text = 'could not connect to "postgresql://bob:hunter2@db:5432/x?password=hunter2": refused'
    assert "hunter2" not in scrub(text)
    assert "postgresql://bob:***@db:5432/x?password=***" in scrub(text)


def test_inline_secret_names_where_it_is() -> None:
    assert inline_secret("postgresql://bob:pw@h/db") == "password"
    assert inline_secret("postgresql://h/db?password=pw") == "query parameter 'password'"
    assert inline_secret("postgresql://bob:${oc.env:PW}@h/db?sslmode=require") is None


def test_an_env_value_in_the_credentials_is_percent_encoded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SWEEPSPEC_T_PW", "p@ss/w:rd")
    url = resolve_env("postgresql://bob:${oc.env:SWEEPSPEC_T_PW}@h/db")
    assert url == "postgresql://bob:p%40ss%2Fw%3Ard@h/db"
    assert mask_url(url) == "postgresql://bob:***@h/db"
