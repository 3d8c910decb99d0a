"""Picks the compiled (Cython) or pure-Python implementation of each hot path.

Every accelerated module exists twice with the same public functions:

* ``wildduck/_speedups/<name>.py``: the pure-Python reference, always importable;
* ``wildduck/_speedups/_<name>.pyx``: the Cython build of the same algorithm (optional).

``load(name)`` returns the compiled module when it was built and ``WILDDUCK_NO_EXTENSIONS`` is not set in the
environment, otherwise the pure one. Tests import both through :func:`implementations` and check that they agree.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

#: Names of the accelerated modules (each has ``<name>.py`` and ``_<name>.pyx``).
MODULES: tuple[str, ...] = ("mimescan", "imaptok", "imapfmt", "compose")


def extensions_disabled() -> bool:
    """True when ``WILDDUCK_NO_EXTENSIONS`` asks for the pure-Python implementations."""
    return os.environ.get("WILDDUCK_NO_EXTENSIONS", "").lower() in ("1", "true", "yes")


def compiled(name: str) -> ModuleType | None:
    """The compiled module for ``name``, or None when it was not built."""
    try:
        return importlib.import_module(f"wildduck._speedups._{name}")
    except ImportError:
        return None


def pure(name: str) -> ModuleType:
    """The pure-Python module for ``name``."""
    return importlib.import_module(f"wildduck._speedups.{name}")


def load(name: str) -> ModuleType:
    """The implementation of ``name`` that the process should use."""
    if not extensions_disabled():
        mod = compiled(name)
        if mod is not None:
            return mod
    return pure(name)


def implementations(name: str) -> dict[str, ModuleType]:
    """Every available implementation of ``name``, keyed ``"python"`` / ``"cython"`` (for tests and benchmarks)."""
    found = {"python": pure(name)}
    mod = compiled(name)
    if mod is not None:
        found["cython"] = mod
    return found


def active() -> dict[str, str]:
    """Which implementation each accelerated module uses in this process: ``{"mimescan": "cython", ...}``."""
    result = {}
    for name in MODULES:
        mod = load(name)
        result[name] = "cython" if mod.__name__.rsplit(".", 1)[-1].startswith("_") else "python"
    return result
