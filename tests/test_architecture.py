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
    "protocols": {"_speedups", "errors"},
    "ports": {"domain", "errors"},
    "domain": {"protocols", "ports", "errors", "_speedups"},
    "adapters": {"ports", "domain", "errors"},
    "net": {"errors"},
    "sessions": {"domain", "protocols", "ports", "errors", "net"},
}
# third-party modules that must never appear in a layer
FORBIDDEN_EXTERNAL: dict[str, set[str]] = {
    "protocols": {"trio", "sqlite3", "pymongo", "redis", "quart", "quart_trio", "hypercorn", "logging.config"},
    "_speedups": {"trio", "sqlite3", "pymongo", "redis"},
    "domain": {"sqlite3", "pymongo", "redis", "quart", "hypercorn"},
    "sessions": {"sqlite3", "pymongo", "redis"},
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
        for bad in FORBIDDEN_EXTERNAL.get(layer, ()):
            assert name != bad and not name.startswith(bad + "."), f"{path.name}: {layer} must not import {name}"


def test_the_check_sees_the_package() -> None:
    layers = {_layer(p) for p in MODULES}
    assert {"protocols", "domain", "ports", "adapters", "sessions"} <= layers
