"""The search space: distributions, fixed values and nested groups.

A leaf is a mapping with exactly one of the keys ``uniform``, ``loguniform``, ``int``, ``choice``,
``grid`` (plus the modifiers ``step``, ``log``, ``when``), a literal ``{value: ...}``, or a plain
fixed value. Any other mapping is a nested group, kept as nesting in the trial's config.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Annotated, Any, Literal, Union

from pydantic import (
    Discriminator,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    Tag,
    WithJsonSchema,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic.types import JsonValue
from typing_extensions import TypeAliasType

from sweepspec.spec.base import IDENT, FiniteFloat, SpecModel

__all__ = [
    "DIST_KEYS",
    "ChoiceDist",
    "FixedValue",
    "GridDist",
    "IntDist",
    "LogUniformDist",
    "Param",
    "ParamName",
    "SpaceNode",
    "UniformDist",
    "ValueLeaf",
    "flatten_space",
    "misspelt_distribution",
]

_Int = int  # the IntDist field `int` shadows the builtin inside its class

DIST_KEYS = ("uniform", "loguniform", "int", "choice", "grid")

_WHEN = "Condition under which this parameter exists, e.g. \"optimizer == 'sgd'\"."


#: The largest int a distribution takes: samplers draw ints as floats, exact up to 2**53.
MAX_INT = 2**53


def _short_int(value: int) -> str:
    text = str(value)
    return text if len(text) <= 20 else f"{text[:8]}...({len(text)} digits)"


def _finite(*values: float) -> bool:
    return all(math.isfinite(v) for v in values)


class _Dist(SpecModel):
    when: str | None = Field(None, description=_WHEN)

    @model_validator(mode="before")
    @classmethod
    def _one_distribution(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            keys = [k for k in DIST_KEYS if k in data]
            if len(keys) > 1:
                raise ValueError(
                    "a parameter has exactly one distribution, but got "
                    + " and ".join(repr(k) for k in keys)
                )
        return data


class UniformDist(_Dist):
    """A float drawn uniformly from [low, high] (or log-uniformly with ``log: true``)."""

    uniform: list[float] = Field(min_length=2, max_length=2, description="[low, high], low < high.")
    step: FiniteFloat | None = Field(
        None, gt=0, description="Discretisation step: low, low+step, ..."
    )
    log: bool = Field(False, description="Sample on a log scale (needs 0 < low).")

    @model_validator(mode="after")
    def _check(self) -> UniformDist:
        low, high = self.uniform
        if not _finite(low, high) or not low < high:
            raise ValueError(f"uniform needs low < high, both finite (got [{low}, {high}])")
        if self.log and low <= 0:
            raise ValueError(f"uniform with log: true needs 0 < low (got low={low})")
        if self.log and self.step is not None:
            raise ValueError("uniform takes step or log: true, not both")
        if self.step is not None and self.step > high - low:
            raise ValueError(f"step {self.step} is larger than the range [{low}, {high}]")
        return self


class LogUniformDist(_Dist):
    """A float drawn log-uniformly from [low, high]."""

    loguniform: list[float] = Field(
        min_length=2, max_length=2, description="[low, high], 0 < low < high."
    )

    @model_validator(mode="after")
    def _check(self) -> LogUniformDist:
        low, high = self.loguniform
        if not _finite(low, high) or not 0 < low < high:
            raise ValueError(f"loguniform needs 0 < low < high (got [{low}, {high}])")
        return self


class IntDist(_Dist):
    """An integer from [low, high], both bounds inclusive."""

    int: list[_Int] = Field(
        min_length=2, max_length=2, description="[low, high], inclusive, low <= high."
    )
    step: Annotated[_Int, Field(ge=1)] | None = Field(None, description="Step between values.")
    log: bool = Field(False, description="Sample on a log scale (needs 1 <= low).")

    @model_validator(mode="after")
    def _check(self) -> IntDist:
        low, high = self.int
        if max(abs(low), abs(high), self.step or 1) > MAX_INT:
            raise ValueError(
                f"int bounds and step are at most 2**53 in size (samplers draw them as floats), "
                f"but got [{_short_int(low)}, {_short_int(high)}]"
            )
        if low > high:
            raise ValueError(f"int needs low <= high (got [{low}, {high}])")
        if self.log and low < 1:
            raise ValueError(f"int with log: true needs 1 <= low (got low={low})")
        if self.log and self.step not in (None, 1):
            raise ValueError("int with log: true takes no step")
        if self.step is not None and (high - low) % self.step:
            raise ValueError(f"int range [{low}, {high}] is not a multiple of step {self.step}")
        return self


def _check_values(values: list[Any], key: str) -> None:
    """Finite and distinct values (numbers equal as numbers are the same value to a searcher).
    Linear in the values: a choice may hold many."""
    seen: dict[str, Any] = {}
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            raise ValueError(f"{key} values must be finite (got {v})")
        marker = _equality_key(v)
        other = seen.get(marker, _UNSEEN)
        if other is not _UNSEEN:
            if type(v) is type(other):
                raise ValueError(f"{key} has the value {v!r} twice")
            raise ValueError(
                f"{key} values {_yaml_text(other)} and {_yaml_text(v)} are equal as numbers, so "
                "a searcher cannot tell them apart; quote them to make them strings"
            )
        seen[marker] = v


_UNSEEN = object()


def _equality_key(value: Any) -> str:
    """A key equal for two values exactly when ``==`` holds between them (``1 == 1.0 == True``,
    lists and mappings compared by content)."""
    if isinstance(value, bool | int | float):
        number = float(value) if not isinstance(value, int) or abs(value) < 2**53 else value
        return f"n:{number!r}"
    return f"{type(value).__name__}:{json.dumps(value, sort_keys=True, default=str)}"


def _yaml_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class ChoiceDist(_Dist):
    """One of a list of values (numbers, strings, booleans, lists)."""

    choice: list[JsonValue] = Field(min_length=1, description="The values to choose from.")

    @model_validator(mode="after")
    def _check(self) -> ChoiceDist:
        _check_values(self.choice, "choice")
        return self


class GridDist(_Dist):
    """Every value is tried: the sweep runs the cross product of all grid values."""

    grid: list[JsonValue] = Field(min_length=1, description="The values, each tried.")

    @model_validator(mode="after")
    def _check(self) -> GridDist:
        _check_values(self.grid, "grid")
        return self


class ValueLeaf(_Dist):
    """A literal value (written ``{value: ...}`` when it is a mapping)."""

    value: JsonValue = Field(description="The fixed value, passed as is.")


FixedValue = Annotated[
    Union[str, bool, int, float, None, list[JsonValue]],  # noqa: UP007
    Field(description="A fixed value passed to every trial."),
]

ParamName = Annotated[str, StringConstraints(pattern=IDENT)]


def _space_tag(value: Any) -> str:
    if isinstance(value, Mapping):
        for key in DIST_KEYS:
            if key in value:
                return f"dist:{key}"
        if "value" in value:
            return "dist:value"
        if "when" in value:
            return "dist:missing"
        return "group"
    return "fixed"


class _MissingDist(SpecModel):
    """A mapping with ``when`` but no distribution key: always invalid."""

    @model_validator(mode="before")
    @classmethod
    def _fail(cls, data: Any) -> Any:
        raise ValueError(
            "a conditional parameter needs a distribution: one of "
            + ", ".join(DIST_KEYS)
            + " (or value)"
        )


def _one_edit(word: str) -> list[str]:
    """Regular expressions for every string one edit (a letter wrong, missing, extra, or two
    swapped) away from ``word``; ``word`` itself does not match."""
    out = []
    for i in range(len(word)):
        out.append(f"{re.escape(word[:i])}[^{re.escape(word[i])}]{re.escape(word[i + 1 :])}")
        out.append(re.escape(word[:i] + word[i + 1 :]))
        if i + 1 < len(word) and word[i] != word[i + 1]:
            out.append(re.escape(word[:i] + word[i + 1] + word[i] + word[i + 2 :]))
    out += [f"{re.escape(word[:i])}.{re.escape(word[i:])}" for i in range(len(word) + 1)]
    return out


#: Keys one edit away from a distribution's keyword (``unifrom``, ``grdi``, ``choise``): a group
#: with one such key holding a list is a misspelt distribution, not a nested group.
NEAR_DISTRIBUTION = "^(" + "|".join(alt for k in DIST_KEYS for alt in _one_edit(k)) + ")$"


def misspelt_distribution(key: str, value: Any) -> str | None:
    """The distribution keyword that ``{key: value}`` (a group's only entry) misspells, or
    None: one edit away from a keyword (or as close as did-you-mean finds), holding a list."""
    if not isinstance(value, list) or key in DIST_KEYS:
        return None
    if re.fullmatch(NEAR_DISTRIBUTION, key):
        return next(k for k in DIST_KEYS if re.fullmatch("|".join(_one_edit(k)), key))
    from sweepspec.suggest import closest

    return closest(key, DIST_KEYS)


class _GroupSchema:
    """The JSON Schema of a nested group: pydantic's own (any mapping of names) also matches
    every distribution mapping, and the union becomes a oneOf, so an editor would flag every
    distribution. A group never has a distribution key (the discriminator would read it as
    one), which tells the two apart."""

    def __get_pydantic_json_schema__(
        self, core_schema: Any, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = dict(handler(core_schema))
        schema["additionalProperties"] = False
        schema["propertyNames"] = {"not": {"enum": [*DIST_KEYS, "value", "when"]}}
        # one key close to a distribution's, holding a list: a misspelt distribution
        schema["if"] = {"maxProperties": 1, "additionalProperties": {"type": "array"}}
        schema["then"] = {"propertyNames": {"not": {"pattern": NEAR_DISTRIBUTION}}}
        return schema


SpaceNode = TypeAliasType(  # type: ignore[misc]  # mypy cannot follow the recursion
    "SpaceNode",
    Annotated[
        Union[  # noqa: UP007
            Annotated[UniformDist, Tag("dist:uniform")],
            Annotated[LogUniformDist, Tag("dist:loguniform")],
            Annotated[IntDist, Tag("dist:int")],
            Annotated[ChoiceDist, Tag("dist:choice")],
            Annotated[GridDist, Tag("dist:grid")],
            Annotated[ValueLeaf, Tag("dist:value")],
            Annotated[_MissingDist, Tag("dist:missing"), WithJsonSchema({"not": {}})],
            Annotated[dict[ParamName, "SpaceNode"], Tag("group"), _GroupSchema()],  # type: ignore[misc]
            Annotated[FixedValue, Tag("fixed")],
        ],
        Discriminator(_space_tag),
    ],
)

Distribution = UniformDist | LogUniformDist | IntDist | ChoiceDist | GridDist


@dataclass(frozen=True)
class Param:
    """One leaf of the space, by its dotted path."""

    path: str
    node: Distribution | ValueLeaf | Any

    @property
    def when(self) -> str | None:
        return getattr(self.node, "when", None)

    @cached_property
    def is_fixed(self) -> bool:
        return not isinstance(
            self.node, UniformDist | LogUniformDist | IntDist | ChoiceDist | GridDist
        )

    @property
    def fixed_value(self) -> Any:
        return self.node.value if isinstance(self.node, ValueLeaf) else self.node

    @cached_property
    def kind(self) -> Literal["uniform", "loguniform", "int", "choice", "grid", "fixed"]:
        for key in DIST_KEYS:
            if hasattr(self.node, key) and not isinstance(self.node, dict):
                return key  # type: ignore[return-value]
        return "fixed"

    @property
    def size(self) -> int | None:
        """How many values the parameter can take: the choices of a ``choice``/``grid``, the
        steps of an ``int`` or of a ``uniform`` with ``step``; None when it is continuous
        (and 1 for a fixed value). Computed, never enumerated."""
        node = self.node
        if isinstance(node, ChoiceDist):
            return len(node.choice)
        if isinstance(node, GridDist):
            return len(node.grid)
        if isinstance(node, IntDist):
            return (node.int[1] - node.int[0]) // (node.step or 1) + 1
        if isinstance(node, UniformDist):
            if not node.step:
                return None
            return int((node.uniform[1] - node.uniform[0]) / node.step + 1e-9) + 1
        if isinstance(node, LogUniformDist):
            return None
        return 1


def flatten_space(space: Mapping[str, Any], prefix: str = "") -> Iterator[Param]:
    """Every leaf of ``space`` in file order, with its dotted path."""
    for key, node in space.items():
        path = f"{prefix}{key}"
        if isinstance(node, dict):
            yield from flatten_space(node, prefix=f"{path}.")
        else:
            yield Param(path, node)
