"""Wheels: the default build carries the compiled speedups, WILDDUCK_NO_EXTENSIONS=1 builds pure Python."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def build_wheel(out: Path, pure: bool) -> Path:
    env = {**os.environ, "WILDDUCK_NO_EXTENSIONS": "1" if pure else ""}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out),
                    str(ROOT)], check=True, env=env, capture_output=True, timeout=600)
    (wheel,) = out.glob("wildduck-*.whl")
    return wheel


def test_pure_wheel_has_no_compiled_code(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, pure=True)
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "wildduck/_speedups/mimescan.py" in names and "wildduck/default.toml" in names
    assert not [n for n in names if n.endswith((".so", ".c", ".pyx"))]


def test_default_wheel_has_the_extensions(tmp_path: Path) -> None:
    wheel = build_wheel(tmp_path, pure=False)
    names = zipfile.ZipFile(wheel).namelist()
    assert [n for n in names if n.startswith("wildduck/_speedups/_mimescan") and n.endswith(".so")]
    assert not [n for n in names if n.endswith(".c")]
