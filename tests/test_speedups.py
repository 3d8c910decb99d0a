"""The Cython speedups: selection, the WILDDUCK_NO_EXTENSIONS switch, and that CI really built them."""

from __future__ import annotations

import os
import subprocess
import sys

from wildduck import _speedups


def test_every_module_has_a_pure_implementation() -> None:
    for name in _speedups.MODULES:
        assert _speedups.implementations(name)["python"].__name__ == f"wildduck._speedups.{name}"


def test_extensions_are_built_when_required() -> None:
    # scripts/dev.sh test sets WILDDUCK_REQUIRE_EXTENSIONS=1 for the Cython run: a failed build must not pass
    # silently as a pure-Python run.
    if os.environ.get("WILDDUCK_REQUIRE_EXTENSIONS") == "1":
        for name in _speedups.MODULES:
            assert _speedups.compiled(name) is not None, f"Cython module _{name} was not built"
            assert _speedups.active()[name] == "cython"
    if _speedups.extensions_disabled():
        assert set(_speedups.active().values()) == {"python"}


def test_no_extensions_switch_selects_pure_python() -> None:
    env = {**os.environ, "WILDDUCK_NO_EXTENSIONS": "1"}
    out = subprocess.run([sys.executable, "-m", "wildduck", "--version"], env=env, capture_output=True,
                         text=True, check=True).stdout
    assert "pure-python" in out and "mimescan=python" in out


def test_version_reports_the_active_implementation() -> None:
    env = {k: v for k, v in os.environ.items() if k != "WILDDUCK_NO_EXTENSIONS"}
    out = subprocess.run([sys.executable, "-m", "wildduck", "--version"], env=env, capture_output=True,
                         text=True, check=True).stdout
    expected = "cython" if _speedups.compiled("mimescan") is not None else "python"
    assert f"mimescan={expected}" in out
