"""The ``wildduck`` command as an administrator uses it: real processes, a real SQLite file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def sample_message() -> bytes:
    return (
        b"From: Sender <sender@example.net>\r\nTo: alice@example.com\r\nSubject: test\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        b"--XX\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        b"AAECAwQFBgcICQ==\r\n--XX--\r\n"
    )


@pytest.fixture
def wd(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = tmp_path / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nemail_domain = "example.org"\n')

    def run(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), *args],
                              input=input, capture_output=True, timeout=120)
        if check and proc.returncode != 0:
            raise AssertionError(f"wildduck {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc

    return run


def test_user_lifecycle(wd) -> None:  # type: ignore[no-untyped-def]
    out = wd("user", "create", "alice", "--password", "pw1", "--address", "Alice.Smith@Example.com",
             "--quota", "10M").stdout.decode()
    assert "created user alice" in out and "alice.smith@example.com" in out
    wd("user", "create", "bob", "--password", "pw2")  # default address bob@example.org
    listing = wd("user", "list").stdout.decode()
    assert "alice  alice.smith@example.com  0/10485760" in listing
    assert "bob  bob@example.org" in listing

    dup = wd("user", "create", "Alice", "--password", "x", check=False)
    assert dup.returncode == 1 and b"taken" in dup.stderr

    wd("address", "add", "alice", "als@example.com")
    assert "als@example.com" in wd("address", "list", "alice").stdout.decode()
    plus = wd("address", "add", "alice", "a+b@example.com", check=False)
    assert plus.returncode == 1 and b"can not contain +" in plus.stderr
    main = wd("address", "remove", "alice.smith@example.com", check=False)
    assert main.returncode == 1
    wd("address", "remove", "als@example.com")
    assert "als@example.com" not in wd("address", "list", "alice").stdout.decode()

    wd("user", "passwd", "alice", "--password", "new")
    wd("user", "delete", "bob", "--yes")
    assert "bob" not in wd("user", "list").stdout.decode()
    missing = wd("user", "delete", "nobody", "--yes", check=False)
    assert missing.returncode == 1 and b"no such user" in missing.stderr


def test_deliver_and_export_round_trip(wd) -> None:  # type: ignore[no-untyped-def]
    wd("user", "create", "alice", "--password", "pw", "--address", "alice@example.com")
    raw = sample_message()
    # dots and +label resolve to the same user
    out = wd("deliver", "a.l.i.c.e+tag@example.com", input=raw).stdout.decode()
    assert "delivered as uid 1" in out
    listing = wd("message", "list", "alice").stdout.decode()
    assert listing.startswith(f"1\t{len(raw)}\t") and listing.rstrip().endswith("test")
    assert wd("message", "export", "alice", "1").stdout == raw
    unknown = wd("deliver", "nobody@example.com", input=raw, check=False)
    assert unknown.returncode == 1 and b"unknown recipient" in unknown.stderr


def test_over_quota_delivery_is_refused(wd) -> None:  # type: ignore[no-untyped-def]
    wd("user", "create", "tiny", "--password", "pw", "--address", "tiny@example.com", "--quota", "100")
    proc = wd("deliver", "tiny@example.com", input=sample_message(), check=False)
    assert proc.returncode == 1 and b"quota" in proc.stderr


def test_check_config(wd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    assert b"configuration OK" in wd("check-config").stdout
    printed = wd("check-config", "--print").stdout.decode()
    assert "[lmtp]" in printed and "port = 2424" in printed
    bad = tmp_path / "bad.toml"
    bad.write_text("[lmtp]\nport = 'x'\n")
    proc = subprocess.run([sys.executable, "-m", "wildduck", "check-config", "--config", str(bad)],
                          capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert str(bad).encode() in proc.stderr and b"[lmtp] port" in proc.stderr
