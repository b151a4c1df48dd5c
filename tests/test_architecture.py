"""The house: data flows one way, text -> Spec -> search -> backend -> run -> results.

Read from the source (every import statement, at module level or inside a function), so that
a function-level import cannot hide a cycle or a layer violation."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sweepspec"

#: The layers, lowest first: a module imports only from its own layer and the ones below.
LAYERS: dict[str, tuple[str, ...]] = {
    "base": (
        "sweepspec.errors",
        "sweepspec.units",
        "sweepspec.suggest",
        "sweepspec.credentials",
        "sweepspec.trial",
        "sweepspec.records",
    ),
    # what a user's objective imports to report from a library's training loop (base only)
    "integrations": ("sweepspec.integrations",),
    "spec": ("sweepspec.spec", "sweepspec.schema"),
    "search": ("sweepspec.search",),
    "run": ("sweepspec.run",),
    "backends": ("sweepspec.backends",),
    "front": ("sweepspec.load", "sweepspec.plots", "sweepspec.report"),
    "commands": ("sweepspec.commands", "sweepspec.cli", "sweepspec.__main__", "sweepspec"),
}
ORDER = list(LAYERS)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path) -> Iterator[str]:
    """Every sweepspec module that ``path`` imports (``from pkg import submodule`` included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            base = node.module
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names
            ]
        else:
            continue
        for imported in names:
            if imported == "sweepspec" or imported.startswith("sweepspec."):
                module = imported
                while module not in MODULES:
                    module = module.rpartition(".")[0]
                yield module


GRAPH = {name: set(_imports(path)) - {name} for name, path in MODULES.items()}


def _layer(module: str) -> str:
    best = ""
    found = "commands"
    for layer, prefixes in LAYERS.items():
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
                best, found = prefix, layer
    return found


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in MODULES if m != "sweepspec" and _layer(m) == "commands"]
    assert sorted(unplaced) == sorted(
        m for m in MODULES if m.startswith(("sweepspec.commands", "sweepspec.cli", "sweepspec.__"))
    )


def test_no_import_cycle() -> None:
    """Tarjan's strongly connected components over every import: none holds two modules."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(GRAPH[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in sorted(GRAPH):
        if v not in index:
            visit(v)
    assert cycles == []


def test_imports_only_go_down_the_layers() -> None:
    wrong = [
        f"{m} ({_layer(m)}) imports {i} ({_layer(i)})"
        for m, imported in GRAPH.items()
        for i in imported
        if ORDER.index(_layer(i)) > ORDER.index(_layer(m))
    ]
    assert wrong == []


def test_the_spec_stage_knows_no_backend_and_only_the_reader_knows_yaml() -> None:
    spec_modules = [m for m in MODULES if _layer(m) == "spec"]
    assert spec_modules
    yaml_users = set()
    for m in spec_modules:
        tree = ast.parse(MODULES[m].read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            if any(n == "yaml" or n.startswith("yaml.") for n in names):
                yaml_users.add(m)
            assert not any(n.startswith(("ray", "optuna")) for n in names), m
    assert yaml_users == {"sweepspec.spec.source"}  # the reader (read.py) goes through it


@pytest.mark.parametrize(
    "compile_module",
    ["sweepspec.backends.optuna_backend.compile", "sweepspec.backends.ray_backend.compile"],
)
def test_a_compile_step_is_pure(compile_module: str) -> None:
    """It imports neither the run layer nor a library at module level or in a function."""
    assert not [i for i in GRAPH[compile_module] if i.startswith("sweepspec.run")]
    source = MODULES[compile_module].read_text(encoding="utf-8")
    assert "import optuna" not in source and "import ray" not in source
    assert "from ray" not in source and "from optuna" not in source


def test_a_backend_imports_no_other_backend() -> None:
    backends = {m.split(".")[2] for m in MODULES if m.count(".") >= 2 and _layer(m) == "backends"}
    assert backends == {"optuna_backend", "ray_backend"}
    for m, imported in GRAPH.items():
        if not m.startswith("sweepspec.backends.") or m.count(".") < 2:
            continue
        own = m.split(".")[2]
        others = [
            i for i in imported if i.startswith("sweepspec.backends.") and i.split(".")[2] != own
        ]
        assert others == [], m


def test_commands_never_name_a_backend() -> None:
    """Commands reach a backend through the registry only: no backend package imported, no
    backend's name compared."""
    for m, path in MODULES.items():
        if _layer(m) != "commands" and m != "sweepspec.load":
            continue
        assert not [i for i in GRAPH[m] if i.startswith("sweepspec.backends.")], m
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        }
        assert not names & {"ray", "optuna"}, m


def test_the_registry_names_every_backend_package() -> None:
    from sweepspec.backends import REGISTRY, backend_named

    packages = {m for m in MODULES if m.count(".") == 2 and m.startswith("sweepspec.backends.")}
    assert set(REGISTRY.values()) == packages
    for name in REGISTRY:
        backend = backend_named(name)
        assert backend.name == name
        for method in ("check", "describe", "run", "read_ledger"):
            assert callable(getattr(backend, method))
