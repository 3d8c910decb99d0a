"""``examples/push-message.py`` against a running server, as the README uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.cli.test_cli import lmtp_store
from wildduck.testing.server import ServerProcess

PUSH = Path(__file__).resolve().parents[2] / "examples" / "push-message.py"


def test_push_message_delivers_to_a_unicode_address_with_smtputf8(tmp_path: Path) -> None:
    """Defect: the example crashed with UnicodeEncodeError on ``jörg@bücher.example``."""
    config, run = lmtp_store(tmp_path)
    run("user", "create", "joerg", "--password", "pw", "--address", "jörg@bücher.example")
    run("user", "create", "ascii", "--password", "pw", "--address", "ascii@example.com")
    with ServerProcess(config) as server:
        host, port = server.address("lmtp")
        for address, save in (("jörg@bücher.example", "u.eml"), ("ascii@example.com", "a.eml")):
            proc = subprocess.run([sys.executable, str(PUSH), address, "--host", host, "--port", str(port),
                                   "--save", str(tmp_path / save)], capture_output=True, timeout=60)
            assert proc.returncode == 0, proc.stderr.decode()
            assert f"to {address}".encode() in proc.stdout
    stored = run("message", "export", "joerg", "1").stdout
    assert stored == (tmp_path / "u.eml").read_bytes() and "To: jörg@bücher.example".encode() in stored
    assert run("message", "export", "ascii", "1").stdout == (tmp_path / "a.eml").read_bytes()
