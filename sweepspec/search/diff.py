"""What changes between two specs that matters for review: the space parameter by parameter
(ranges widened, narrowed or shifted, choices added or dropped, parameters added or removed),
everything else key by key of the resolved specs, budget keys as a factor, and the total
trial count when grid points multiply it. Pure; ``sweepspec diff`` formats it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sweepspec.search.plan import trial_count
from sweepspec.spec.read import LoadedSpec
from sweepspec.spec.space import Param

__all__ = ["FACTORS", "GROUPS", "Change", "diff_specs", "show"]

GROUPS = {
    "space": ("space", "derived", "constraints", "try_first"),
    "objective": ("objective",),
    "search": ("searcher", "scheduler"),
    "budget": ("trials", "stop", "resources", "total trials"),
    "backend": ("backend", "storage", "tracking"),
}
#: budget keys whose change is shown as a factor
FACTORS = (
    "trials.num_samples",
    "trials.timeout",
    "stop.sweep.time_budget",
    "resources.max_concurrent",
    "backend.workers",
)
RANGES = ("uniform", "loguniform", "int")
VALUES = ("choice", "grid")


@dataclass(frozen=True)
class Change:
    """One change: its key path, the value before and after (None: absent) and a note
    (``widened``, ``x4``, ``added``...)."""

    path: str
    before: Any
    after: Any
    note: str = ""

    @property
    def group(self) -> str:
        top = self.path.split(".")[0]
        return next((g for g, keys in GROUPS.items() if top in keys), "other")

    def text(self) -> str:
        note = f" ({self.note})" if self.note else ""
        if self.before is None:
            return f"{self.path}: added {show(self.after)}{note}"
        if self.after is None:
            return f"{self.path}: removed (was {show(self.before)})"
        return f"{self.path}: {show(self.before)} -> {show(self.after)}{note}"


def show(value: Any) -> str:
    """A value as the diff shows it (JSON)."""
    return json.dumps(value, default=str)


def diff_specs(a: LoadedSpec, b: LoadedSpec) -> list[Change]:
    """Every change from ``a`` to ``b``: the space parameter by parameter, everything else
    key by key (of the resolved specs)."""
    changes = _space_changes(a.spec.params(), b.spec.params())
    da, db = a.spec.dump(), b.spec.dump()
    da.pop("space", None)
    db.pop("space", None)
    _walk(da, db, "", changes)
    count_a, count_b = trial_count(a.spec), trial_count(b.spec)
    plain = (a.spec.trials.num_samples, b.spec.trials.num_samples)
    if count_a != count_b and (count_a, count_b) != plain:  # grid points multiply num_samples
        changes.append(Change("total trials", count_a, count_b, _factor(count_a, count_b)))
    return changes


def _space_changes(old: list[Param], new: list[Param]) -> list[Change]:
    before = {p.path: p for p in old}
    after = {p.path: p for p in new}
    out: list[Change] = []
    for path in [*before, *(p for p in after if p not in before)]:
        key = f"space.{path}"
        if path not in after:
            out.append(Change(key, _leaf(before[path]), None))
        elif path not in before:
            out.append(Change(key, None, _leaf(after[path])))
        else:
            out += _param_change(key, before[path], after[path])
    return out


def _leaf(p: Param) -> Any:
    node = p.node
    dump = getattr(node, "model_dump", None)  # a distribution, or {value: ...}
    return dump(mode="json", exclude_none=True, exclude_defaults=True) if dump else node


def _param_change(key: str, a: Param, b: Param) -> list[Change]:
    la, lb = _leaf(a), _leaf(b)
    if la == lb:
        return []
    if a.kind != b.kind or a.kind == "fixed":
        return [Change(key, la, lb, f"{a.kind} -> {b.kind}" if a.kind != b.kind else "")]
    out: list[Change] = []
    if la[a.kind] != lb[a.kind]:
        note = _range_note(la[a.kind], lb[a.kind]) if a.kind in RANGES else ""
        if a.kind in VALUES:
            note = _values_note(la[a.kind], lb[a.kind])
        out.append(Change(f"{key}.{a.kind}", la[a.kind], lb[a.kind], note))
    rest_a = {k: v for k, v in la.items() if k != a.kind}
    rest_b = {k: v for k, v in lb.items() if k != a.kind}
    _walk(rest_a, rest_b, key, out)
    return out


def _range_note(a: list[float], b: list[float]) -> str:
    (lo_a, hi_a), (lo_b, hi_b) = a, b
    if lo_b <= lo_a and hi_b >= hi_a:
        return "widened"
    if lo_b >= lo_a and hi_b <= hi_a:
        return "narrowed"
    return "shifted"


def _values_note(a: list[Any], b: list[Any]) -> str:
    added = [show(v) for v in b if v not in a]
    dropped = [show(v) for v in a if v not in b]
    parts = ([f"added {', '.join(added)}"] if added else []) + (
        [f"dropped {', '.join(dropped)}"] if dropped else []
    )
    return "; ".join(parts) or "reordered"


def _walk(a: Any, b: Any, path: str, out: list[Change]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{key}" if path else str(key)
            _walk(a.get(key), b.get(key), sub, out)
    elif a != b:
        out.append(Change(path, a, b, _factor(a, b) if path in FACTORS else ""))


def _factor(a: Any, b: Any) -> str:
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b)) or not a:
        return ""
    return f"x{b / a:.3g}"
