"""The whole spec: one frozen model. It knows no backend internals and no YAML."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, JsonValue, StringConstraints

from sweepspec.spec.backend import Backend, OptunaBackend, Tracking
from sweepspec.spec.base import NAME_PATTERN, SpecModel
from sweepspec.spec.objective import Objective
from sweepspec.spec.run_config import Resources, Stop, Trials
from sweepspec.spec.scheduler import FifoScheduler, Scheduler
from sweepspec.spec.searcher import Searcher
from sweepspec.spec.space import Param, ParamName, SpaceNode, flatten_space

__all__ = ["FORMAT_VERSION", "Spec"]

FORMAT_VERSION = 1


class Spec(SpecModel):
    """A sweep: what to run, over which space, with which searcher, scheduler and budget."""

    sweepspec: Literal[1] = Field(description="Format version of the spec; this is version 1.")
    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN, max_length=100)] | None = Field(
        None, description="Run name, [a-z0-9][a-z0-9._-]*; default: the file's stem."
    )
    extends: str | None = Field(
        None,
        description="A base spec (path relative to this file) that this one is merged over.",
    )
    description: str = Field("", description="What this sweep is for.")
    objective: Objective = Field(description="The function to optimise and its metric(s).")
    space: dict[ParamName, SpaceNode] = Field(
        description="Nested mapping; a leaf is a distribution or a fixed value.",
    )
    derived: dict[str, str] = Field(
        default_factory=dict,
        description="Values computed from sampled ones, e.g. {head_dim: 'hidden // 8'}.",
    )
    try_first: list[dict[str, JsonValue]] = Field(
        default_factory=list,
        description="Known-good (partial) configs evaluated before the searcher's own.",
    )
    constraints: list[str] = Field(
        default_factory=list,
        description="Expressions every trial satisfies, e.g. 'lora_alpha >= lora_r'.",
    )
    searcher: Searcher = Field(default_factory=Searcher, description="The search algorithm.")
    scheduler: Scheduler = Field(
        default_factory=lambda: FifoScheduler(type="fifo"),
        description="Early stopping: fifo | asha | hyperband | median | pbt.",
    )
    stop: Stop = Field(default_factory=Stop, description="Per-trial and whole-sweep stops.")
    trials: Trials = Field(default_factory=Trials, description="Trial budget and failures.")
    resources: Resources = Field(
        default_factory=Resources, description="Per-trial resources and concurrency."
    )
    backend: Backend = Field(
        default_factory=lambda: OptunaBackend(type="optuna"),
        description="optuna (embedded, default) or ray.",
    )
    storage: str = Field(
        "runs",
        description="Directory for runs (relative to the current directory); the optuna "
        "backend also takes an RDB URL (postgresql://..., sqlite:///...).",
    )
    tracking: Tracking | None = Field(None, description="Experiment tracking (MLflow).")

    def dump(self) -> dict[str, Any]:
        """Plain JSON-able data (the union of leaf kinds makes pydantic's serializer warn
        although its output is right, so its warnings are off here)."""
        return self.model_dump(mode="json", warnings=False, exclude_none=True)

    @property
    def run_name(self) -> str:
        assert self.name is not None, "the loader always sets the name"
        return self.name

    def params(self) -> list[Param]:
        """Every leaf of the space, in file order."""
        return list(flatten_space(self.space))

    def sampled_params(self) -> list[Param]:
        return [p for p in self.params() if not p.is_fixed]

    def grid_params(self) -> list[Param]:
        return [p for p in self.params() if p.kind == "grid"]

    @property
    def storage_is_url(self) -> bool:
        return "://" in self.storage
