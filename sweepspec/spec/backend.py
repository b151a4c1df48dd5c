"""Where trials run, where results are stored, and where they are tracked."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Field, Tag

from sweepspec.spec.base import SpecModel

__all__ = ["Backend", "MlflowTracking", "OptunaBackend", "RayBackend", "Tracking"]


class OptunaBackend(SpecModel):
    """Embedded: worker processes on this machine, a journal file; no daemons."""

    type: Literal["optuna"] = Field("optuna", description="optuna (the default backend)")
    workers: Annotated[int, Field(ge=1, le=10_000)] | Literal["auto"] = Field(
        "auto", description="Trials at once on this machine (processes); auto = what fits."
    )
    reuse_processes: bool = Field(
        True,
        description="Run a worker's next trial in the same trial process (what the "
        "objective's module keeps in globals carries over); false forks a fresh one for every "
        "trial.",
    )


class RayBackend(SpecModel):
    """Ray Tune: one machine or a Ray cluster."""

    type: Literal["ray"] = Field(description="ray")
    address: str | None = Field(
        None,
        description='null or "local" starts Ray here; "auto" or "ray://head:10001" joins '
        "a cluster.",
    )
    dashboard: bool = Field(False, description="Start Ray's dashboard with a local Ray.")
    reuse_processes: bool = Field(
        True,
        description="Run an actor's next trial in the same trial process (what the objective's "
        "module keeps in globals carries over); false forks a fresh one for every trial.",
    )


def _tag(value: Any) -> str:
    if isinstance(value, dict):
        return str(value.get("type", "<missing>"))
    return "<not a mapping>"


Backend = Annotated[
    Union[  # noqa: UP007
        Annotated[OptunaBackend, Tag("optuna")],
        Annotated[RayBackend, Tag("ray")],
    ],
    Discriminator(_tag),
]


class MlflowTracking(SpecModel):
    """Log every trial as an MLflow run."""

    tracking_uri: str = Field(
        "file:./mlruns",
        description="MLflow tracking URI; credentials via ${oc.env:VAR}, never inline.",
    )
    experiment: str | None = Field(None, description="Experiment name (default: the run name).")


class Tracking(SpecModel):
    """Experiment tracking."""

    mlflow: MlflowTracking | None = Field(None, description="MLflow tracking.")
