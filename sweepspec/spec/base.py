"""The base of every spec model: strict, frozen, closed (unknown keys are errors)."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

__all__ = ["IDENT", "METRIC_NAME", "NAME_PATTERN", "FiniteFloat", "MetricName", "SpecModel"]

IDENT = r"^[A-Za-z_][A-Za-z0-9_]*$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"
#: a metric's name: what the objective reports it as (not empty, no control characters)
METRIC_NAME = r"^[^\x00-\x1f\x7f]{1,200}$"

#: A float that is a number: ``.inf`` and ``.nan`` are errors wherever a spec takes a float.
FiniteFloat = Annotated[float, Field(allow_inf_nan=False)]


def _metric_name(value: str) -> str:
    if not re.fullmatch(METRIC_NAME, value):
        raise ValueError(
            f"a metric name is 1 to 200 characters, none of them a control character, but got "
            f"{value[:40]!r}"
        )
    return value


MetricName = Annotated[
    str,
    AfterValidator(_metric_name),
    WithJsonSchema({"type": "string", "pattern": METRIC_NAME}),
]


class SpecModel(BaseModel):
    """Strict (no string-to-number coercion), frozen, and ``extra="forbid"``."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        strict=True,
        hide_input_in_errors=True,
        validate_default=False,
    )
