"""``sweepspec diff A B``: what changes between two specs that matters for review."""

from __future__ import annotations

import argparse
from typing import Any

from sweepspec.load import load_spec

__all__ = ["diff_specs", "main"]

GROUPS = {
    "space": ("space", "derived", "constraints", "try_first"),
    "objective": ("objective",),
    "search": ("searcher", "scheduler"),
    "budget": ("trials", "stop", "resources"),
    "backend": ("backend", "storage", "tracking"),
}


def _walk(a: Any, b: Any, path: str, out: list[tuple[str, str]]) -> None:
    if isinstance(a, dict) and isinstance(b, dict):
        for key in [*a, *(k for k in b if k not in a)]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in b:
                out.append((sub, f"- {a[key]!r}"))
            elif key not in a:
                out.append((sub, f"+ {b[key]!r}"))
            else:
                _walk(a[key], b[key], sub, out)
    elif a != b:
        out.append((path, f"{a!r} -> {b!r}"))


def diff_specs(a: dict[str, Any], b: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    _walk(a, b, "", changes)
    grouped: dict[str, list[tuple[str, str]]] = {}
    for path, text in changes:
        top = path.split(".")[0]
        group = next((g for g, keys in GROUPS.items() if top in keys), "other")
        grouped.setdefault(group, []).append((path, text))
    return grouped


def main(args: argparse.Namespace) -> int:
    a = load_spec(args.a, feasibility=False).spec.dump()
    b = load_spec(args.b, feasibility=False).spec.dump()
    grouped = diff_specs(a, b)
    if not grouped:
        print("no changes that matter")
        return 0
    for group in (*GROUPS, "other"):
        if group not in grouped:
            continue
        note = (
            " (a run of A cannot resume as B)" if group in ("space", "objective", "search") else ""
        )
        print(f"{group}{note}:")
        for path, text in grouped[group]:
            print(f"  {path}: {text}")
    return 0
