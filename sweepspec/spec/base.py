"""The base of every spec model: strict, frozen, closed (unknown keys are errors)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["IDENT", "NAME_PATTERN", "SpecModel"]

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class SpecModel(BaseModel):
    """Strict (no string-to-number coercion), frozen, and ``extra="forbid"``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        hide_input_in_errors=True,
        validate_default=False,
    )
