"""What to optimise: the function, its metric(s) and the fixed part of its config."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, JsonValue, ValidationInfo, field_validator, model_validator

from sweepspec.spec.base import MetricName, SpecModel

__all__ = ["FORBIDDEN_MODULES", "SCORE", "Objective"]

Mode = Literal["max", "min"]
#: The name the value of ``objective.score`` is recorded, ranked, scheduled and searched under
#: (a reserved metric name when a spec has a score).
SCORE = "score"

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
    mode: Mode | None = Field(None, description="max or min, with `metric` or `score`.")
    score: str | None = Field(
        None,
        description="One value to optimise, in the direction `mode`, computed from the metrics "
        "listed in `metrics` by an expression, e.g. '0.7 * accuracy - 0.003 * latency_ms'. "
        "Recorded beside the metrics as 'score'; the searcher, the scheduler, stops and the "
        "best trial go by it.",
    )
    metrics: dict[MetricName, Mode] | list[MetricName] | None = Field(
        None,
        description="Several metrics to optimise at once, each max or min (a Pareto front): "
        "{accuracy: max, latency_ms: min}; or, with `score`, the metrics the objective reports "
        "that the score is computed from, without directions: [accuracy, latency_ms].",
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

    @field_validator("score")
    @classmethod
    def _score_direction(cls, value: str | None, info: ValidationInfo) -> str | None:
        # checked here (metric comes first) so that the error points at `score`
        if value is not None and info.data.get("metric") is not None:
            raise ValueError(
                "a score is computed from the metrics listed in metrics: [name, ...]; give "
                "metrics instead of metric"
            )
        return value

    @field_validator("metrics")
    @classmethod
    def _not_with_metric(
        cls, value: dict[str, Mode] | list[str] | None, info: ValidationInfo
    ) -> dict[str, Mode] | list[str] | None:
        # checked here (metric, mode and score come first) so that the error points at `metrics`
        scored = info.data.get("score") is not None
        if isinstance(value, dict) and scored:
            if len(value) > 1:
                raise ValueError(
                    "a score is one value, optimised in one direction (mode), but metrics "
                    f"gives {len(value)} metrics with directions (multi-objective, a Pareto "
                    "front); give either a score with metrics: [name, ...] and mode, or "
                    "metrics: {name: max|min} alone"
                )
            raise ValueError(
                "a score's metrics are listed without directions (metrics: [name, ...]); "
                "the score's direction is mode"
            )
        if isinstance(value, dict) and (info.data.get("metric") or info.data.get("mode")):
            raise ValueError("give either metric + mode or metrics, not both")
        if isinstance(value, list):
            if not scored and "score" in info.data:
                raise ValueError(
                    "a list of metrics names the metrics of a score: give score and mode "
                    "too, or metrics: {name: max|min}"
                )
            if not value:
                raise ValueError("a score needs the metrics it is computed from")
            twice = sorted({name for name in value if value.count(name) > 1})
            if twice:
                raise ValueError(f"every metric is listed once, but got {twice[0]!r} twice")
            if SCORE in value:
                raise ValueError(
                    f"{SCORE!r} is the name the score's value is recorded under; a metric of "
                    "the score needs another name"
                )
        return value

    @model_validator(mode="after")
    def _metric_or_metrics(self) -> Objective:
        if self.score is not None:
            if self.metrics is None:
                raise ValueError(
                    "a score needs the metrics it is computed from: metrics: [name, ...]"
                )
            if self.mode is None:
                raise ValueError("a score needs its direction: mode: max or min")
            return self  # the rest is checked by the field validators
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
        """Every optimised value with its direction, in order: with a score, the score alone
        (under the name :data:`SCORE`)."""
        if self.score is not None:
            assert self.mode is not None  # checked by the validator
            return {SCORE: self.mode}
        if isinstance(self.metrics, dict):
            return dict(self.metrics)
        assert self.metric is not None and self.mode is not None  # checked by the validator
        return {self.metric: self.mode}

    @property
    def score_metrics(self) -> list[str]:
        """The metrics a score is computed from (empty without a score)."""
        return list(self.metrics) if self.score is not None and self.metrics else []

    @property
    def is_multi(self) -> bool:
        return self.score is None and isinstance(self.metrics, dict) and len(self.metrics) > 1

    def primary(self) -> tuple[str, Mode]:
        name, mode = next(iter(self.directions.items()))
        return name, mode

    def module_and_function(self) -> tuple[str, str]:
        target, _, func = self.function.rpartition(":")
        return target, func

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"function": self.function, "directions": self.directions}
        if self.score is not None:
            out["score"] = {"expression": self.score, "metrics": self.score_metrics}
        return out
