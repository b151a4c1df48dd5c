"""What to optimise: the function, its metric(s) and the fixed part of its config."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, JsonValue, ValidationInfo, field_validator, model_validator

from sweepspec.spec.base import MetricName, SpecModel

__all__ = ["FORBIDDEN_MODULES", "Objective"]

Mode = Literal["max", "min"]

# Running these as an "objective" would run arbitrary commands; a spec naming them is refused.
FORBIDDEN_MODULES = frozenset(
    {
        "os",
        "posix",
        "nt",
        "sys",
        "subprocess",
        "builtins",
        "shutil",
        "socket",
        "ctypes",
        "importlib",
        "pickle",
        "marshal",
        "runpy",
        "code",
        "codeop",
        "pty",
        "multiprocessing",
        "signal",
        "webbrowser",
        "pathlib",
        "io",
        "tempfile",
        "logging",
        "asyncio",
    }
)

_MODULE = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*"
_FUNC = r"[A-Za-z_][A-Za-z0-9_]*"


class Objective(SpecModel):
    """The objective function and what it returns."""

    function: str = Field(
        description='"package.module:function" or "path/to/file.py:function" (relative to the '
        "spec file). Checked for form only at validate time: no user code is imported.",
    )
    metric: MetricName | None = Field(
        None, description="The metric to optimise (single objective)."
    )
    mode: Mode | None = Field(None, description="max or min, with `metric`.")
    metrics: dict[MetricName, Mode] | None = Field(
        None,
        description="Several metrics to optimise at once, each max or min (a Pareto front).",
    )
    config: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="Fixed values, merged under the sampled ones in the trial's config.",
    )

    @field_validator("function")
    @classmethod
    def _function_form(cls, value: str) -> str:
        target, sep, func = value.rpartition(":")
        if not sep or not re.fullmatch(_FUNC, func):
            raise ValueError(
                f'function must be "module:function" or "file.py:function", but got {value!r}'
            )
        if target.endswith(".py"):
            if "\x00" in target:
                raise ValueError("function path contains a NUL byte")
            return value
        if not re.fullmatch(_MODULE, target):
            raise ValueError(f"{target!r} is neither a module name nor a path ending in .py")
        if target.split(".")[0] in FORBIDDEN_MODULES:
            raise ValueError(f"refusing to run {value!r}: it is not a training function")
        return value

    @field_validator("metrics")
    @classmethod
    def _not_with_metric(
        cls, value: dict[str, Mode] | None, info: ValidationInfo
    ) -> dict[str, Mode] | None:
        # checked here (metric and mode come first) so that the error points at `metrics`
        if value is not None and (info.data.get("metric") or info.data.get("mode")):
            raise ValueError("give either metric + mode or metrics, not both")
        return value

    @model_validator(mode="after")
    def _metric_or_metrics(self) -> Objective:
        if self.metrics is not None:
            if self.metric is not None or self.mode is not None:
                raise ValueError("give either metric + mode or metrics, not both")
            if not self.metrics:
                raise ValueError("metrics needs at least one metric")
        elif self.metric is None or self.mode is None:
            raise ValueError("give metric and mode (max or min), or metrics: {name: max|min}")
        return self

    @property
    def directions(self) -> dict[str, Mode]:
        """Every optimised metric with its direction, in order."""
        if self.metrics is not None:
            return dict(self.metrics)
        assert self.metric is not None and self.mode is not None  # checked by the validator
        return {self.metric: self.mode}

    @property
    def is_multi(self) -> bool:
        return self.metrics is not None and len(self.metrics) > 1

    def primary(self) -> tuple[str, Mode]:
        name, mode = next(iter(self.directions.items()))
        return name, mode

    def module_and_function(self) -> tuple[str, str]:
        target, _, func = self.function.rpartition(":")
        return target, func

    def describe(self) -> dict[str, Any]:
        return {"function": self.function, "directions": self.directions}
