"""``scripts/dev.sh serve`` starts without reinstalling when nothing that needs a build changed."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STAMP = ROOT / ".venv" / ".wildduck-install-stamp"


DEV = ROOT / "scripts" / "dev.sh"


def installed() -> bool:
    """Whether ``scripts/dev.sh serve`` would start without installing (asked without installing anything)."""
    env = {k: v for k, v in os.environ.items() if k != "VENV"}
    return subprocess.run([str(DEV), "installed"], env=env, capture_output=True, timeout=120).returncode == 0


def test_dev_serve_skips_the_install_when_the_sources_are_unchanged(tmp_path: Path) -> None:
    if not installed():  # never reinstall the venv under a running test suite
        if os.environ.get("CI") == "true":  # `scripts/dev.sh test` just installed it: CI must not skip this
            pytest.fail("the venv is not up to date with the sources after `scripts/dev.sh test` installed it")
        pytest.skip("the venv is not up to date with the sources: `scripts/dev.sh test` (or serve) installs it")
    config = tmp_path / "c.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nshutdown_timeout = 1.0\n'
                      "[lmtp]\nport = 0\n[imap]\nport = 0\ntls_port = 0\n[pop3]\nport = 0\ntls_port = 0\n"
                      "[metrics]\nport = 0\n")
    stamp = STAMP.read_text()
    started = time.monotonic()
    proc = subprocess.Popen([str(DEV), "serve", "--config", str(config)], cwd=tmp_path,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={k: v for k, v in os.environ.items() if k != "VENV"}, start_new_session=True)
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode(errors="replace"))
            if " ready " in lines[-1]:
                break
        elapsed = time.monotonic() - started
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    out = "".join(lines)
    assert STAMP.read_text() == stamp and "up to date" in out, out
    assert "ready" in out and "Editable installation" not in out, out
    assert elapsed < 10, f"took {elapsed:.1f} s to start"
