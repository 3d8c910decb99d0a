"""Dependencies only point down (shared/DESIGN.md §1): an AST check of every import in the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "wildduck"

# layer -> wildduck subpackages it may import (besides itself)
ALLOWED: dict[str, set[str]] = {
    "_speedups": set(),
    "errors": set(),
    "log": set(),
    # a leaf every layer that does something countable may use
    "metrics": set(),
    "model": {"errors"},
    "protocols": {"_speedups", "errors"},
    "ports": {"model", "errors"},
    "domain": {"protocols", "ports", "model", "errors", "_speedups"},
    # adapters may use the pure MIME library (a migration re-derives search text from stored messages)
    "adapters": {"ports", "model", "errors", "protocols", "metrics"},
    "net": {"errors", "log", "metrics"},
    # sessions and the api reach storage only through the domain services: never through a port
    "sessions": {"domain", "protocols", "model", "errors", "net", "log", "metrics"},
    "api": {"domain", "protocols", "model", "errors", "net", "log", "metrics"},
}
# modules of an allowed layer that a layer must still not import
FORBIDDEN_INTERNAL: dict[str, set[str]] = {
    # the domain is protocol-neutral: IMAP compiles its own keys into the domain's query types
    "domain": {"wildduck.protocols.imap", "wildduck.protocols.lmtp", "wildduck.protocols.pop3"},
    "adapters": {"wildduck.protocols.imap", "wildduck.protocols.lmtp", "wildduck.protocols.pop3"},
}
# third-party modules that must never appear in a layer
FORBIDDEN_EXTERNAL: dict[str, set[str]] = {
    "protocols": {"trio", "sqlite3", "pymongo", "redis", "quart", "quart_trio", "hypercorn", "logging.config"},
    "_speedups": {"trio", "sqlite3", "pymongo", "redis"},
    "domain": {"sqlite3", "pymongo", "redis", "quart", "hypercorn"},
    "sessions": {"sqlite3", "pymongo", "redis"},
    # the API reaches storage through the domain services only
    "api": {"sqlite3", "pymongo", "redis"},
}


def _layer(path: Path) -> str:
    rel = path.relative_to(PKG)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


MODULES = sorted(p for p in PKG.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_point_down(path: Path) -> None:
    layer = _layer(path)
    if layer not in ALLOWED:  # app, cli, log, config, testing, __main__: composition level
        return
    for name in _imports(path):
        top = name.split(".")
        if top[0] == "wildduck" and len(top) > 1:
            target = top[1]
            assert target == layer or target in ALLOWED[layer], f"{path.name}: {layer} must not import {name}"
        for bad in FORBIDDEN_INTERNAL.get(layer, set()) | FORBIDDEN_EXTERNAL.get(layer, set()):
            assert name != bad and not name.startswith(bad + "."), f"{path.name}: {layer} must not import {name}"


def test_the_check_sees_the_package() -> None:
    layers = {_layer(p) for p in MODULES}
    assert {"protocols", "domain", "ports", "adapters", "sessions"} <= layers


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _graph() -> dict[str, set[str]]:
    """Module -> the wildduck modules it imports (``from pkg import name`` counts ``pkg.name`` when that is a
    module). Imports under ``if TYPE_CHECKING:`` count too: a cycle of types is still a cycle."""
    names = {_module_name(p): p for p in MODULES}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges: set[str] = set()
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name in names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module in names:
                    edges.add(node.module)
                edges.update(f"{node.module}.{a.name}" for a in node.names if f"{node.module}.{a.name}" in names)
        edges.discard(name)
        # a package's __init__ re-exporting its modules is not a cycle with them
        graph[name] = {e for e in edges if not (path.name == "__init__.py" and e.startswith(name + "."))}
    return graph


def test_no_import_cycles() -> None:
    """No module imports one that (directly or not) imports it back."""
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles[:5])
