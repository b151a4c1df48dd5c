"""Early stopping and population methods. Each type takes only its own keys."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag, ValidationInfo, field_validator

from sweepspec.spec.base import FiniteFloat, SpecModel

__all__ = [
    "SCHEDULER_TYPES",
    "AshaScheduler",
    "FifoScheduler",
    "HyperbandScheduler",
    "MedianScheduler",
    "PbtScheduler",
    "Scheduler",
]

#: The most time_attr units a scheduler counts (a larger one is a typo).
MAX_STEPS = 10**9

_TIME_ATTR = (
    "The progress counter the scheduler measures in: training_iteration (one per "
    "trial.report), time_total_s, or a reported metric that grows (e.g. epoch)."
)


class _Base(SpecModel):
    time_attr: str = Field("training_iteration", description=_TIME_ATTR)


class FifoScheduler(_Base):
    """No early stopping: every trial runs to its end."""

    type: Literal["fifo"] = Field(description="fifo")


class AshaScheduler(_Base):
    """Asynchronous successive halving."""

    type: Literal["asha"] = Field(description="asha")
    max_t: int = Field(
        100, ge=1, le=MAX_STEPS, description="Longest a trial runs, in time_attr units."
    )
    grace_period: int = Field(
        1, ge=1, le=MAX_STEPS, description="Shortest a trial runs before it can stop."
    )
    reduction_factor: FiniteFloat = Field(
        4, gt=1, le=1000, description="1/reduction_factor go on per rung."
    )
    brackets: int = Field(1, ge=1, le=100, description="Number of brackets.")
    mode: Literal["stop", "promote"] = Field(
        "stop",
        description=(
            "stop: a trial outside the top 1/reduction_factor at a rung stops for good; "
            "promote (optuna backend): it pauses there with its checkpoint and resumes when it "
            "earns promotion (ASHA's paper, algorithm 2)."
        ),
    )

    @field_validator("grace_period")
    @classmethod
    def _within_max_t(cls, value: int, info: ValidationInfo) -> int:
        # a field validator (max_t is validated first) so the error points at grace_period
        max_t = info.data.get("max_t")
        if isinstance(max_t, int) and value > max_t:
            raise ValueError(
                f"grace_period <= max_t must hold, but got (grace_period={value}, max_t={max_t})"
            )
        return value


class HyperbandScheduler(_Base):
    """HyperBand: several brackets of successive halving."""

    type: Literal["hyperband"] = Field(description="hyperband")
    max_t: int = Field(
        81, ge=1, le=MAX_STEPS, description="Longest a trial runs, in time_attr units."
    )
    reduction_factor: FiniteFloat = Field(
        3, gt=1, le=1000, description="1/reduction_factor go on per rung."
    )


class MedianScheduler(_Base):
    """Stop a trial whose best result is worse than the median of others at the same step."""

    type: Literal["median"] = Field(description="median")
    grace_period: FiniteFloat = Field(
        1, ge=0, le=MAX_STEPS, description="No stopping before this many time_attr units."
    )
    min_samples_required: int = Field(
        3, ge=1, le=10**6, description="Trials that must have reported before any is stopped."
    )


class PbtScheduler(_Base):
    """Population based training (ray backend only): exploit checkpoints of better trials."""

    type: Literal["pbt"] = Field(description="pbt")
    perturbation_interval: FiniteFloat = Field(
        4, gt=0, le=MAX_STEPS, description="Exploit/explore every this many time_attr units."
    )
    quantile_fraction: FiniteFloat = Field(
        0.25, gt=0, le=0.5, description="Bottom fraction that copies the top fraction."
    )
    resample_probability: FiniteFloat = Field(
        0.25, ge=0, le=1, description="Chance to resample a value instead of perturbing it."
    )
    mutations: list[str] | None = Field(
        None,
        description="Parameter paths to mutate (default: every sampled parameter of the space).",
    )


def _tag(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "<missing>"))
    return "<not a mapping>"


SCHEDULER_TYPES = ("fifo", "asha", "hyperband", "median", "pbt")

Scheduler = Annotated[
    Union[  # noqa: UP007
        Annotated[FifoScheduler, Tag("fifo")],
        Annotated[AshaScheduler, Tag("asha")],
        Annotated[HyperbandScheduler, Tag("hyperband")],
        Annotated[MedianScheduler, Tag("median")],
        Annotated[PbtScheduler, Tag("pbt")],
    ],
    Discriminator(_tag),
]
