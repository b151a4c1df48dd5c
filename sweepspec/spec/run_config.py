"""Stopping rules, trial budget and resources."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, WithJsonSchema, field_validator

from sweepspec.spec.base import FiniteFloat, MetricName, SpecModel
from sweepspec.units import DURATION_PATTERN, SIZE_PATTERN, parse_duration, parse_size

__all__ = ["Duration", "PerTrial", "Resources", "Size", "Stop", "SweepStop", "Threshold", "Trials"]

_DURATION_TEXT = (
    "A duration: seconds, or numbers with units (d, h, m, s, ms, largest first): '90s', '30m', "
    "'1.5h', '1h30m', '2d12h'."
)
_SIZE_TEXT = "A size: bytes, or a number and a unit (B, KB, MB, GB, TB, KiB...): '512MB', '4GB'."

Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    # the string first: an editor then reports a mistyped duration with the pattern's message
    WithJsonSchema(
        {
            "anyOf": [
                {
                    "type": "string",
                    "pattern": DURATION_PATTERN,
                    "patternErrorMessage": _DURATION_TEXT,
                },
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": _DURATION_TEXT,
        }
    ),
]
Size = Annotated[
    int,
    BeforeValidator(parse_size),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": SIZE_PATTERN, "patternErrorMessage": _SIZE_TEXT},
                {"type": "number", "exclusiveMinimum": 0},
            ],
            "description": _SIZE_TEXT,
        }
    ),
]

Comparison = Literal[">=", "<=", ">", "<"]
Threshold = FiniteFloat | dict[Comparison, FiniteFloat]
#: A trial's memory cap: below 16 MiB no Python process starts; above 1 PiB nothing can hold it.
MIN_MEMORY, MAX_MEMORY = 16 * 2**20, 2**50


class SweepStop(SpecModel):
    """When the whole sweep stops early."""

    time_budget: Duration | None = Field(
        None, description="Stop starting trials after this long; running ones end."
    )
    target: dict[MetricName, FiniteFloat] | None = Field(
        None,
        description="Stop once the best trial reaches these values (in the metric's direction).",
    )


class Stop(SpecModel):
    """Per-trial and whole-sweep stopping rules."""

    trial: dict[MetricName, Threshold] = Field(
        default_factory=dict,
        description="Stop a trial when a reported value reaches a threshold: "
        "{training_iteration: 100, reward: {'>=': 475}}. A bare number means "
        "'reached' (>= for training_iteration, time_total_s and max metrics, <= for min).",
    )
    sweep: SweepStop = Field(default_factory=SweepStop, description="Whole-sweep stopping rules.")

    @field_validator("trial")
    @classmethod
    def _one_comparison(cls, value: dict[str, Threshold]) -> dict[str, Threshold]:
        for key, threshold in value.items():
            if isinstance(threshold, dict) and len(threshold) != 1:
                raise ValueError(f"stop.trial.{key} takes one comparison, e.g. {{'>=': 475}}")
        return value


class Trials(SpecModel):
    """How many trials, and how failures are handled."""

    num_samples: int = Field(
        10,
        ge=1,
        le=10**8,
        description="Trials to finish (pruned ones count); grid values multiply it.",
    )
    max_retries: int = Field(
        0, ge=0, le=1000, description="A trial that raises is retried this often."
    )
    max_failed: int | None = Field(
        None, ge=1, le=10**8, description="The sweep stops after this many failed trials."
    )
    timeout: Duration | None = Field(
        None, description="A trial running longer is killed and counted as failed."
    )


class PerTrial(SpecModel):
    """What one trial needs."""

    cpu: FiniteFloat = Field(
        1, gt=0, le=4096, description="CPU cores per trial (fractions allowed)."
    )
    gpu: FiniteFloat = Field(
        0, ge=0, le=1024, description="GPUs per trial; a fraction packs trials on a GPU."
    )
    memory: Size | None = Field(
        None, description="Memory cap per trial, e.g. '4GB' (16 MiB to 1 PiB)."
    )

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: int | None) -> int | None:
        if value is not None and not MIN_MEMORY <= value <= MAX_MEMORY:
            raise ValueError(
                f"a trial's memory cap must be from 16MiB to 1PiB (a process needs more than "
                f"16 MiB; no machine has more than 1 PiB), but got {value} bytes"
            )
        return value

    @field_validator("gpu")
    @classmethod
    def _gpu(cls, value: float) -> float:
        if value > 1 and value != int(value):
            raise ValueError(f"gpu above 1 must be a whole number, but got {value}")
        return value


class Resources(SpecModel):
    """Resources per trial and concurrency."""

    per_trial: PerTrial = Field(default_factory=PerTrial, description="What one trial needs.")
    max_concurrent: Annotated[int, Field(ge=1, le=100_000)] | Literal["auto"] = Field(
        "auto", description="Trials at once; auto = as many as the machine or cluster fits."
    )

    @field_validator("max_concurrent")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 1:
            raise ValueError(f"max_concurrent must be >= 1 or 'auto', but got {value}")
        return value
