"""How each sampled parameter is suggested on an Optuna trial, and how a config's values are
read back: one table for every backend (both search with an Optuna sampler: the Optuna backend
on its study, the Ray backend behind Ray's ``OptunaSearch``), so the same spec and seed give the
same configs everywhere.

Optuna's categorical distributions hold None, bool, int, float and str only: a choice whose
values are lists or mappings is stored as their JSON text (:func:`encode_choice`) and decoded
back to the value the spec wrote (:func:`decode_choice`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sweepspec.search.space import SpaceModel
from sweepspec.spec.space import ChoiceDist, GridDist, IntDist, LogUniformDist, Param, UniformDist

__all__ = [
    "AskedTrial",
    "SuggestSpec",
    "active_values",
    "decode_choice",
    "decode_params",
    "encode_choice",
    "encode_params",
    "sample_params",
    "suggest_spec",
]

Method = Literal["float", "int", "categorical"]


class AskedTrial(Protocol):
    """What :func:`sample_params` needs of an Optuna trial (``optuna.Trial``)."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = ..., log: bool = ...
    ) -> float: ...

    def suggest_int(
        self, name: str, low: int, high: int, *, step: int = ..., log: bool = ...
    ) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


def encode_choice(value: Any) -> Any:
    """Optuna categoricals hold None/bool/int/float/str: lists are stored as JSON text."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def decode_choice(value: Any, options: list[Any]) -> Any:
    """The option of ``options`` whose encoding is ``value`` (``True`` and ``1`` stay apart)."""
    for option in options:
        if encode_choice(option) == value and type(encode_choice(option)) is type(value):
            return option
    return value


@dataclass(frozen=True)
class SuggestSpec:
    """How one parameter is suggested: ``trial.suggest_<method>(path, **kwargs)``."""

    path: str
    method: Method
    kwargs: dict[str, Any]
    options: list[Any] = field(default_factory=list)  # decoded choices (categorical)

    def encode(self, value: Any) -> Any:
        return encode_choice(value) if self.method == "categorical" else value

    def decode(self, value: Any) -> Any:
        return decode_choice(value, self.options) if self.options else value


def suggest_spec(param: Param) -> SuggestSpec:
    """The suggestion for a sampled parameter of the spec."""
    node = param.node
    if isinstance(node, UniformDist):
        low, high = node.uniform
        return SuggestSpec(
            param.path, "float", {"low": low, "high": high, "step": node.step, "log": node.log}
        )
    if isinstance(node, LogUniformDist):
        low, high = node.loguniform
        return SuggestSpec(param.path, "float", {"low": low, "high": high, "log": True})
    if isinstance(node, IntDist):
        low, high = node.int
        return SuggestSpec(
            param.path, "int", {"low": low, "high": high, "step": node.step or 1, "log": node.log}
        )
    if isinstance(node, ChoiceDist | GridDist):
        options = list(node.choice if isinstance(node, ChoiceDist) else node.grid)
        return SuggestSpec(
            param.path, "categorical", {"choices": [encode_choice(v) for v in options]}, options
        )
    raise TypeError(f"{param.path} is a fixed value, not a distribution")


def sample_params(
    space: SpaceModel, suggest: Mapping[str, SuggestSpec], trial: AskedTrial
) -> dict[str, Any]:
    """Suggest the active parameters on an Optuna ``trial`` in dependency order (a ``when``
    sees the values it depends on); choices come back decoded. Fixed leaves are left out."""
    values: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for p in space.params:
        if not space.is_active(p, context):
            continue
        if p.is_fixed:
            context[p.path] = p.fixed_value
            continue
        s = suggest[p.path]
        if s.method == "float":
            v: Any = trial.suggest_float(p.path, **s.kwargs)
        elif s.method == "int":
            v = trial.suggest_int(p.path, **s.kwargs)
        else:
            v = s.decode(trial.suggest_categorical(p.path, s.kwargs["choices"]))
        values[p.path] = v
        context[p.path] = v
    return values


def active_values(space: SpaceModel, config: Mapping[str, Any]) -> dict[str, Any]:
    """The sampled values of the parameters that are active in ``config`` (flat dotted paths,
    e.g. what a Ray trial holds), in dependency order; a value for an inactive parameter (PBT
    may add one) is dropped."""
    values: dict[str, Any] = {}
    context: dict[str, Any] = {}
    for p in space.params:
        if not space.is_active(p, context):
            continue
        if p.is_fixed:
            context[p.path] = p.fixed_value
        elif p.path in config:
            values[p.path] = config[p.path]
            context[p.path] = config[p.path]
    return values


def decode_params(suggest: Mapping[str, SuggestSpec], params: Mapping[str, Any]) -> dict[str, Any]:
    """An Optuna trial's params with choices decoded (a name the space lacks is kept as is)."""
    out: dict[str, Any] = {}
    for k, v in params.items():
        s = suggest.get(k)
        out[k] = s.decode(v) if s is not None else v
    return out


def encode_params(suggest: Mapping[str, SuggestSpec], params: Mapping[str, Any]) -> dict[str, Any]:
    """Decoded values of the space's parameters as Optuna holds them (others are dropped)."""
    return {k: suggest[k].encode(v) for k, v in params.items() if k in suggest}
