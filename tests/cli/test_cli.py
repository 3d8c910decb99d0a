"""The ``wildduck`` command as an administrator uses it: real processes, a real SQLite file."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
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


Run = Callable[..., subprocess.CompletedProcess[bytes]]


def runner(config: Path, env: dict[str, str] | None = None) -> Run:
    """``run(*args)``: ``wildduck --config CONFIG ARGS`` as a process (``check``: fail the test on a non-zero
    exit)."""
    def run(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess[bytes]:
        proc = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), *args],
                              input=input, capture_output=True, timeout=120, env={**os.environ, **(env or {})})
        if check and proc.returncode != 0:
            raise AssertionError(f"wildduck {' '.join(args)} failed: {proc.stderr.decode()}")
        return proc

    return run


def lmtp_store(tmp_path: Path) -> tuple[Path, Run]:
    """A configuration for a server with LMTP alone (on an ephemeral port) and an initialized store; the CLI."""
    config = tmp_path / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nshutdown_timeout = 2.0\n'
                      "[lmtp]\nport = 0\n[imap]\nenabled = false\n[pop3]\nenabled = false\n[metrics]\nport = 0\n")
    run = runner(config)
    run("init")
    return config, run


@pytest.fixture
def wd(tmp_path: Path) -> Run:
    """The CLI on an initialized store in ``tmp_path/data``."""
    config = tmp_path / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\nemail_domain = "example.org"\n')
    run = runner(config)
    run("init")
    return run


def test_user_lifecycle(wd: Run) -> None:
    out = wd("user", "create", "alice", "--password", "pw1", "--address", "Alice.Smith@Example.com",
             "--quota", "10M").stdout.decode()
    assert "created user alice" in out and "alice.smith@example.com" in out
    wd("user", "create", "bob", "--password", "pw2")  # default address bob@example.org
    listing = wd("user", "list").stdout.decode().splitlines()
    assert listing[0].split() == ["ID", "USERNAME", "ADDRESS", "USED", "QUOTA"]
    assert listing[1].split()[1:] == ["alice", "alice.smith@example.com", "0", "B", "10", "MiB"]
    assert listing[2].split()[1:] == ["bob", "bob@example.org", "0", "B", "1", "GiB"]

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


def test_deliver_and_export_round_trip(wd: Run) -> None:
    wd("user", "create", "alice", "--password", "pw", "--address", "alice@example.com")
    raw = sample_message()
    # dots and +label resolve to the same user
    out = wd("deliver", "a.l.i.c.e+tag@example.com", input=raw).stdout.decode()
    assert "delivered as uid 1" in out
    header, row = wd("message", "list", "alice").stdout.decode().splitlines()
    assert header.split() == ["UID", "SIZE", "DATE", "FLAGS", "SUBJECT"]
    assert row.split()[:3] == ["1", str(len(raw)), "B"] and row.endswith("test")
    assert wd("message", "export", "alice", "1").stdout == raw
    unknown = wd("deliver", "nobody@example.com", input=raw, check=False)
    assert unknown.returncode == 1 and b"unknown recipient" in unknown.stderr


def test_over_quota_delivery_is_refused(wd: Run) -> None:
    wd("user", "create", "tiny", "--password", "pw", "--address", "tiny@example.com", "--quota", "100")
    proc = wd("deliver", "tiny@example.com", input=sample_message(), check=False)
    assert proc.returncode == 1 and b"quota" in proc.stderr


def test_check_config(wd: Run, tmp_path: Path) -> None:
    assert b"configuration OK" in wd("check-config").stdout
    printed = wd("check-config", "--print").stdout.decode()
    assert "[lmtp]" in printed and "port = 2424" in printed
    bad = tmp_path / "bad.toml"
    bad.write_text("[lmtp]\nport = 'x'\n")
    proc = subprocess.run([sys.executable, "-m", "wildduck", "check-config", "--config", str(bad)],
                          capture_output=True, timeout=60)
    assert proc.returncode == 1
    assert str(bad).encode() in proc.stderr and b"[lmtp] port" in proc.stderr


def test_administrative_commands_refuse_to_create_a_store(tmp_path: Path) -> None:
    """Defect: ``wildduck user list`` in another directory made an empty database there and listed nothing."""
    config = tmp_path / "wildduck.toml"
    data = tmp_path / "data"
    config.write_text(f'[server]\ndata_dir = "{data}"\n')
    run = runner(config)
    database = data / "wildduck.db"
    for args in (("user", "list"), ("user", "create", "x", "-p", "pw", "-a", "x@example.com"),
                 ("message", "list", "x"), ("deliver", "x@example.com"), ("backup", str(tmp_path / "b.db")),
                 ("user", "unlock", "x")):
        proc = run(*args, input=b"Subject: x\r\n\r\nx\r\n", check=False)
        lines = proc.stderr.decode().strip().splitlines()
        assert proc.returncode == 1 and len(lines) == 1, (args, lines)
        assert str(database) in lines[0] and "wildduck init" in lines[0] and "--config" in lines[0]
        assert not data.exists()
    assert run("init").stdout.decode().strip() == f"created {database}"
    assert "exists already" in run("init").stdout.decode()
    listed = run("user", "list")
    assert listed.stderr.decode().splitlines() == [f"using {database}"]
    # the data directory is found the same from any working directory
    elsewhere = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "user", "list"],
                               capture_output=True, timeout=120, cwd=tmp_path / "data")
    assert elsewhere.returncode == 0 and elsewhere.stderr.decode().strip() == f"using {database}"


def test_errors_name_mailboxes_by_path(wd: Run) -> None:
    wd("user", "create", "alice", "--password", "pw", "--address", "alice@example.com")
    gone = wd("message", "list", "alice", "--mailbox", "Archive/2024", check=False)
    assert gone.returncode == 1 and gone.stderr.decode().splitlines()[-1] == \
        "Error: alice has no mailbox 'Archive/2024'"
    missing = wd("message", "export", "alice", "7", "--mailbox", "Trash", check=False)
    assert missing.returncode == 1 and missing.stderr.decode().splitlines()[-1] == \
        "Error: alice has no message with UID 7 in 'Trash'"


def test_deleting_an_unknown_user_says_so_before_asking(wd: Run) -> None:
    proc = wd("user", "delete", "nobody", input=b"y\n", check=False)
    assert proc.returncode == 1 and b"no such user 'nobody'" in proc.stderr
    assert b"Delete" not in proc.stdout + proc.stderr  # never asked
    wd("user", "create", "bob", "--password", "pw")
    kept = wd("user", "delete", "bob", input=b"n\n", check=False)
    assert kept.returncode == 1 and b"Delete bob and all its mail?" in kept.stdout
    assert "bob" in wd("user", "list").stdout.decode()
    assert b"deleted user bob" in wd("user", "delete", "bob", input=b"y\n").stdout


def test_user_create_refuses_an_email_domain_that_resolves_to_localhost(tmp_path: Path) -> None:
    """An empty ``[server] email_domain`` on a machine called localhost gave users ``bob@localhost``."""
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text("import socket\nsocket.getfqdn = lambda name='': 'localhost'\n")
    config = tmp_path / "wildduck.toml"
    config.write_text(f'[server]\ndata_dir = "{tmp_path / "data"}"\n')
    run = runner(config, {"PYTHONPATH": os.pathsep.join([str(hooks), os.environ.get("PYTHONPATH", "")])})
    run("init")
    refused = run("user", "create", "bob", "--password", "pw", check=False)
    message = refused.stderr.decode().strip().splitlines()[-1]
    assert refused.returncode == 1 and "[server] email_domain" in message and "--address" in message
    assert "bob" not in run("user", "list").stdout.decode()
    assert b"bob@example.com" in run("user", "create", "bob", "--password", "pw", "--address",
                                     "bob@example.com").stdout
    assert b"eve@example.net" in run("user", "create", "eve@example.net", "--password", "pw").stdout


def test_check_reports_a_consistent_store_and_each_problem(wd: Run, tmp_path: Path) -> None:
    wd("user", "create", "alice", "--password", "pw", "--address", "alice@example.com")
    wd("deliver", "alice@example.com", input=sample_message())
    ok = wd("check", "--sweep")
    assert ok.stdout.decode().splitlines() == ["swept 0 messages stored into mailboxes being deleted",
                                               "the store is consistent"]
    with sqlite3.connect(tmp_path / "data" / "wildduck.db") as conn:  # a reference count off by one
        conn.execute("UPDATE blobs SET refcount = refcount + 1")
    bad = wd("check", check=False)
    assert bad.returncode == 1 and bad.stdout and b"consistent" not in bad.stdout, bad
