"""Checks across fields that a single model cannot make: names in expressions, conditions
without cycles, ``try_first`` inside the space, what a searcher or scheduler supports, and
credentials that must not be inline. Each problem names the key path it is about.

What a particular backend cannot do is not checked here: each backend says so itself
(``sweepspec.backends.<name>.checks``), and :mod:`sweepspec.load` reports both together."""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping
from typing import Any

from sweepspec.credentials import inline_secret, mask_url
from sweepspec.errors import KeyPath, Problem
from sweepspec.spec.expr import Expr, ExprError, parse_expr
from sweepspec.spec.objective import SCORE
from sweepspec.spec.root import Spec
from sweepspec.spec.searcher import MULTI_OBJECTIVE_SEARCHERS, SEARCHER_OPTIONS
from sweepspec.spec.source import SourceMap
from sweepspec.spec.space import (
    ChoiceDist,
    GridDist,
    IntDist,
    LogUniformDist,
    Param,
    UniformDist,
    misspelt_distribution,
)
from sweepspec.suggest import did_you_mean

__all__ = ["check_spec"]

RDB_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg2", "mysql", "mysql+pymysql")
MAX_GRID_VALUES = 100_000


class _Report:
    def __init__(self, source: SourceMap) -> None:
        self.source = source
        self.problems: list[Problem] = []

    def add(
        self, path: KeyPath, message: str, code: str = "invalid", *, at_key: bool = False
    ) -> None:
        """A problem about ``path``, located at its value (or, ``at_key``, at its key)."""
        where = (self.source.key(path) if at_key else None) or self.source.locate(path)
        self.problems.append(Problem(message, ".".join(str(p) for p in path), where, code))


def check_spec(spec: Spec, source: SourceMap) -> list[Problem]:
    """Every cross-field problem of ``spec``."""
    report = _Report(source)
    params = spec.params()
    misspelt = _check_misspelt_distributions(spec.space, ("space",), report)
    if not spec.sampled_params() and not misspelt:
        report.add(
            ("space",),
            "nothing to search: the space has no distribution (uniform, loguniform, int, "
            "choice or grid), so every trial would run the same config",
            "empty-space",
        )
    exprs = _check_expressions(spec, params, report)
    _check_condition_cycles(params, exprs, report)
    _check_try_first(spec, params, exprs, report)
    _check_objective(spec, report)
    _check_searcher(spec, params, report)
    _check_scheduler(spec, params, report)
    _check_storage(spec, report)
    return report.problems


def _check_misspelt_distributions(group: Mapping[str, Any], path: KeyPath, report: _Report) -> bool:
    """A nested group whose only key is close to a distribution's keyword and holds a list
    (``x: {unifrom: [0, 1]}``) is a misspelt distribution: read as it is, it would be a fixed
    value and the sweep would search less than the user wrote. True when one was found."""
    found = False
    for key, node in group.items():
        if not isinstance(node, dict):
            continue
        if len(node) == 1:
            ((inner, value),) = node.items()
            meant = misspelt_distribution(inner, value)
            if meant is not None:
                report.add(
                    (*path, key, inner),
                    f"{inner!r} is not a distribution (did you mean '{meant}'?); a nested group "
                    "of one list is almost always a misspelt one. A fixed list is written "
                    f"{{value: ...}}",
                    "misspelt-distribution",
                    at_key=True,
                )
                found = True
                continue
        found = _check_misspelt_distributions(node, (*path, key), report) or found
    return found


def _space_path(param_path: str) -> KeyPath:
    return ("space", *param_path.split("."))


def _parse(text: str, path: KeyPath, report: _Report) -> Expr | None:
    try:
        return parse_expr(text)
    except ExprError as exc:
        shown = text if len(text) <= 80 else text[:77] + "..."  # a 10 kB expression stays out
        report.add(path, f"{exc.message} (at column {exc.col} of {shown!r})", "expression")
        return None


def _check_names(expr: Expr, known: set[str], path: KeyPath, report: _Report, what: str) -> None:
    columns = expr.name_columns()
    for name in sorted(expr.names()):
        if name not in known:
            hint = did_you_mean(name, known)
            report.add(
                path,
                f"{what} refers to {name!r}, which is not a parameter{hint} "
                f"(at column {columns.get(name, 1)})",
                "unknown-name",
            )


def _check_expressions(spec: Spec, params: list[Param], report: _Report) -> dict[str, Expr]:
    """Parse every expression and check its names; returns the parsed ``when`` conditions."""
    param_paths = {p.path for p in params}
    conditions: dict[str, Expr] = {}
    for p in params:
        if p.when is None:
            continue
        path = (*_space_path(p.path), "when")
        expr = _parse(p.when, path, report)
        if expr is None:
            continue
        conditions[p.path] = expr
        if p.path in expr.names():
            report.add(path, f"the condition of {p.path!r} refers to itself", "condition-cycle")
            continue
        _check_names(expr, param_paths - {p.path}, path, report, "the condition")
    known = set(param_paths)
    for key, text in spec.derived.items():
        dpath: KeyPath = ("derived", key)
        if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", key):
            report.add(dpath, f"a derived name is a dotted identifier, but got {key!r}")
        if key in param_paths:
            report.add(dpath, f"{key!r} is already a parameter of the space", "duplicate-name")
        else:  # set at its path in the trial's config, it would replace a group or a parameter
            clash = next(
                (q for q in sorted(param_paths) if _nested(q, key) or _nested(key, q)), None
            )
            if clash is not None:
                report.add(
                    dpath,
                    f"{key!r} would overwrite the parameter {clash!r} in the "
                    "trial's config; choose another name",
                    "duplicate-name",
                )
        expr = _parse(text, dpath, report)
        if expr is not None:
            _check_names(expr, known, dpath, report, "the derived value")
        known.add(key)
    for i, text in enumerate(spec.constraints):
        expr = _parse(text, ("constraints", i), report)
        if expr is not None:
            _check_names(expr, known, ("constraints", i), report, "the constraint")
    return conditions


def _nested(path: str, prefix: str) -> bool:
    """Whether the dotted ``path`` lies inside ``prefix`` (``a.b`` inside ``a``)."""
    return path.startswith(prefix + ".")


def _check_condition_cycles(
    params: list[Param], conditions: Mapping[str, Expr], report: _Report
) -> None:
    deps = {
        path: (set(expr.names()) & set(conditions)) - {path} for path, expr in conditions.items()
    }
    reported: set[str] = set()
    for start in deps:
        stack, seen = [start], set()
        while stack:
            node = stack.pop()
            for nxt in deps.get(node, ()):
                if nxt == start and start not in reported:
                    reported.add(start)
                    report.add(
                        (*_space_path(start), "when"),
                        f"the conditions of {start!r} and {node!r} depend on each other",
                        "condition-cycle",
                    )
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)


def _flatten(
    entry: Mapping[str, Any], params: set[str], prefix: str = ""
) -> Iterator[tuple[str, Any]]:
    for key, value in entry.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and path not in params:
            yield from _flatten(value, params, f"{path}.")
        else:
            yield path, value


def in_domain(param: Param, value: Any) -> str | None:
    """None if ``value`` is a possible value of ``param``, else what must hold."""
    node = param.node
    if isinstance(node, UniformDist | LogUniformDist | IntDist):
        low, high = getattr(node, param.kind)
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not low <= value <= high:
            return f"must be a number in [{low}, {high}]"
        if isinstance(node, IntDist) and not isinstance(value, int):
            return f"must be an integer in [{low}, {high}]"
        step = getattr(node, "step", None)
        if step and abs(round((value - low) / step) * step - (value - low)) > 1e-9 * max(1, step):
            return f"must be on the grid {low} + k * {step}"
        return None
    if isinstance(node, ChoiceDist | GridDist):
        values = getattr(node, param.kind)
        return None if value in values else f"must be one of {values}"
    return None if value == param.fixed_value else f"is fixed to {param.fixed_value!r}"


def _check_try_first(
    spec: Spec, params: list[Param], conditions: Mapping[str, Expr], report: _Report
) -> None:
    by_path = {p.path: p for p in params}
    for i, entry in enumerate(spec.try_first):
        for key, value in _flatten(entry, set(by_path)):
            path: KeyPath = ("try_first", i, *key.split("."))
            param = by_path.get(key)
            if param is None:
                report.add(
                    path, f"{key!r} is not a parameter{did_you_mean(key, by_path)}", "unknown-name"
                )
                continue
            problem = in_domain(param, value)
            if problem:
                report.add(path, f"{key} {problem}, but got {value!r}", "out-of-space")
        _check_try_first_entry(spec, i, entry, by_path, conditions, report)


def _check_try_first_entry(
    spec: Spec,
    index: int,
    entry: Mapping[str, Any],
    by_path: Mapping[str, Param],
    conditions: Mapping[str, Expr],
    report: _Report,
) -> None:
    """A known-good config must be a config the space can produce: active parameters only,
    and every constraint that can be evaluated on it holds."""
    from sweepspec.spec.expr import ExprEvalError, MissingName

    values = dict(_flatten(entry, set(by_path)))
    context = {p.path: p.fixed_value for p in by_path.values() if p.is_fixed} | values
    for key in values:
        cond = conditions.get(key)
        if cond is None:
            continue
        try:
            active = bool(cond.evaluate(context))
        except (MissingName, ExprEvalError):
            continue
        if not active:
            report.add(
                ("try_first", index, *key.split(".")),
                f"{key} is inactive in this config (its condition {cond.source!r} does not hold)",
                "inactive",
            )
    for ci, text in enumerate(spec.constraints):
        try:
            holds = parse_expr(text).evaluate(context)
        except (ExprError, MissingName, ExprEvalError):
            continue
        if not holds:
            report.add(
                ("try_first", index), f"this config breaks constraint #{ci} {text!r}", "infeasible"
            )


def _check_objective(spec: Spec, report: _Report) -> None:
    directions = spec.objective.directions
    scored = spec.objective.score is not None
    for key in spec.stop.sweep.target or {}:
        if key not in directions:
            hint = f" (with objective.score, the target is on {SCORE!r})" if scored else ""
            report.add(
                ("stop", "sweep", "target", key),
                f"target names {key!r}, which is not an optimised metric"
                f"{did_you_mean(key, directions) or hint}",
                "unknown-metric",
            )
    if spec.objective.score is not None:
        _check_score(spec.objective.score, spec.objective.score_metrics, report)


def _check_score(text: str, metrics: list[str], report: _Report) -> None:
    """``objective.score``: an expression over the listed metrics whose value is a number."""
    from sweepspec.spec.expr import ExprEvalError

    path: KeyPath = ("objective", "score")
    expr = _parse(text, path, report)
    if expr is None:
        return
    columns = expr.name_columns()
    unknown = sorted(name for name in expr.names() if name not in metrics)
    for name in unknown:
        report.add(
            path,
            f"the score refers to {name!r}, which is not listed in objective.metrics"
            f"{did_you_mean(name, metrics)} (at column {columns.get(name, 1)})",
            "unknown-name",
        )
    if unknown:
        return
    try:  # the type of its value, at a point where every metric is 1
        value = expr.evaluate(dict.fromkeys(expr.names(), 1.0))
    except ExprEvalError:
        return  # e.g. log(accuracy - 1): the value at one point says nothing of the others
    if isinstance(value, bool) or not isinstance(value, int | float):
        kind = "a bool" if isinstance(value, bool) else f"a {type(value).__name__}"
        report.add(
            path,
            f"the score must be a number, but {text!r} gives {kind}",
            "expression",
        )


def _check_searcher(spec: Spec, params: list[Param], report: _Report) -> None:
    kind = spec.searcher.type
    allowed = SEARCHER_OPTIONS[kind]
    for key, value in spec.searcher.options.items():
        if key not in allowed:
            names = ", ".join(sorted(allowed)) or "none"
            report.add(
                ("searcher", "options", key),
                f"searcher {kind!r} takes no option {key!r}{did_you_mean(key, allowed)}; "
                f"its options: {names}",
                "unknown-option",
            )
            continue
        wrong = allowed[key].problem(value)
        if wrong:
            report.add(("searcher", "options", key), f"{kind} option {key} {wrong}", "option-value")
    if spec.objective.is_multi and kind not in MULTI_OBJECTIVE_SEARCHERS:
        report.add(
            ("searcher", "type"),
            f"searcher {kind!r} optimises one metric, but objective.metrics has "
            f"{len(spec.objective.directions)}; use one of "
            f"{', '.join(sorted(MULTI_OBJECTIVE_SEARCHERS))}",
            "multi-objective",
        )
    if kind == "grid":
        sizes = [p.size for p in params if not p.is_fixed]
        for p in params:
            if not p.is_fixed and p.size is None:
                report.add(
                    (*_space_path(p.path),),
                    f"searcher 'grid' needs a finite space, but {p.path!r} is continuous "
                    "(give it a step, or use choice/grid)",
                    "grid",
                )
        if all(n is not None for n in sizes):
            configs = math.prod(n for n in sizes if n is not None)
            if configs > MAX_GRID_VALUES:
                report.add(
                    ("searcher", "type"),
                    f"searcher 'grid' would enumerate {configs} configs; at most "
                    f"{MAX_GRID_VALUES} (narrow the space or use another searcher)",
                    "grid",
                )
    total = 1
    for p in spec.grid_params():
        total *= p.size or 1
    if total > MAX_GRID_VALUES:
        report.add(("space",), f"the grid has {total} points; at most {MAX_GRID_VALUES}", "grid")


def _check_scheduler(spec: Spec, params: list[Param], report: _Report) -> None:
    sched = spec.scheduler
    if sched.type != "fifo" and spec.objective.is_multi:
        report.add(
            ("scheduler", "type"),
            f"scheduler {sched.type!r} ranks trials by one metric, but objective.metrics "
            "has several; use fifo",
            "multi-objective",
        )
    if sched.time_attr in spec.objective.directions:
        report.add(
            ("scheduler", "time_attr"),
            f"time_attr {sched.time_attr!r} is the optimised metric; it must be a "
            "progress counter such as training_iteration",
            "time-attr",
        )
    if sched.type == "pbt" and sched.mutations:
        sampled = {p.path for p in params if not p.is_fixed}
        for i, name in enumerate(sched.mutations):
            if name not in sampled:
                report.add(
                    ("scheduler", "mutations", i),
                    f"{name!r} is not a sampled parameter{did_you_mean(name, sampled)}",
                    "unknown-name",
                )


def _check_storage(spec: Spec, report: _Report) -> None:
    if spec.storage_is_url:
        scheme = spec.storage.split("://", 1)[0]
        if scheme not in RDB_SCHEMES:
            report.add(
                ("storage",),
                f"unsupported storage scheme {scheme!r}; use a directory "
                f"or one of {', '.join(RDB_SCHEMES)}",
                "storage",
            )
        secret = inline_secret(spec.storage)
        if secret:
            report.add(
                ("storage",),
                f"the URL {mask_url(spec.storage)} has an inline {secret}; "
                "write it as ${oc.env:PGPASSWORD} so it stays out of files",
                "secret",
            )
    elif "\x00" in spec.storage or not spec.storage.strip():
        report.add(("storage",), "storage must be a directory path or a database URL")
    elif "${" in spec.storage:
        report.add(
            ("storage",),
            "a storage directory cannot come from the environment: ${oc.env:...} goes in a "
            "database URL's credentials (postgresql://user:${oc.env:PGPASSWORD}@host/db); "
            "pass a directory as an override (storage=/path) instead",
            "storage",
        )
    mlflow = spec.tracking.mlflow if spec.tracking else None
    secret = inline_secret(mlflow.tracking_uri) if mlflow is not None else None
    if mlflow is not None and secret:
        report.add(
            ("tracking", "mlflow", "tracking_uri"),
            f"the URL {mask_url(mlflow.tracking_uri)} has an inline {secret}; write it "
            "as ${oc.env:MLFLOW_TRACKING_PASSWORD}",
            "secret",
        )
