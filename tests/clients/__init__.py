"""Real mail clients against the whole server. A missing client skips its test locally and fails it in CI."""

from __future__ import annotations

import os
import shutil

import pytest


def client_binary(name: str, package: str) -> str:
    """The path of the client program ``name`` (from the Debian package ``package``)."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{name} (Debian package {package}) is not installed; scripts/dev.sh test installs it")
        pytest.skip(f"{name} is not installed")
    return path
