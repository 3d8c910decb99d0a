"""``wildduck backup`` and ``wildduck restore`` as an administrator runs them: real processes, a server delivering
meanwhile."""

from __future__ import annotations

import os
import pty
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import trio

from tests.cli.test_cli import Run, lmtp_store
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.testing.lmtp_client import LMTPClient
from wildduck.testing.server import ServerProcess

CLIENTS = 3


def setup(tmp_path: Path) -> tuple[Path, Run]:
    config, run = lmtp_store(tmp_path)
    run("user", "create", "alice", "--password", "pw", "--address", "alice@example.com")
    return config, run


def message(n: int) -> bytes:
    return (b"From: s@example.net\r\nTo: alice@example.com\r\nSubject: backup test %d\r\n"
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n"
            b"message %d\r\n--b\r\nContent-Type: application/octet-stream\r\n\r\n" % (n, n)
            + os.urandom(3000 + n % 3000).hex().encode() + b"\r\n--b--\r\n")


def subjects_in(path: Path) -> set[int]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {int(row[0].rsplit(" ", 1)[1]) for row in conn.execute("SELECT subject FROM messages")}
    finally:
        conn.close()


def test_backup_while_the_server_delivers_is_consistent(tmp_path: Path) -> None:
    """Defect: copying data/wildduck.db gave an empty database (everything was still in the -wal)."""
    config, run = setup(tmp_path)
    acknowledged: set[int] = set()
    lock = threading.Lock()
    stop = threading.Event()
    counter = iter(range(1_000_000))
    with ServerProcess(config) as server:
        host, port = server.address("lmtp")

        def client() -> None:
            with LMTPClient(host, port, timeout=30) as c:
                c.lhlo()
                while not stop.is_set():
                    with lock:
                        n = next(counter)
                    _rcpts, replies = c.send_message("s@example.net", ["alice@example.com"], message(n))
                    if replies[0][0] == 250:
                        with lock:
                            acknowledged.add(n)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        try:
            backups = []
            for i in range(3):
                with lock:
                    before = set(acknowledged)
                dest = tmp_path / f"backup-{i}.db"
                proc = run("backup", str(dest))
                assert b"integrity check ok" in proc.stdout and proc.stderr.startswith(b"using ")
                assert proc.stderr.count(b"\n") == 1  # no progress bar when stderr is not a terminal
                backups.append((dest, before))
        finally:
            stop.set()
            for t in threads:
                t.join(60)
    assert len(acknowledged) > 10
    for dest, before in backups:
        assert not Path(f"{dest}-wal").exists()  # one self-contained file
        found = subjects_in(dest)
        assert before <= found, f"acknowledged before the backup began but missing: {sorted(before - found)}"

        async def check(path: Path = dest) -> None:  # blobs, references and search text agree too
            store = await open_sqlite_store(path)
            try:
                assert await store.check_integrity() == []
            finally:
                await store.close()

        trio.run(check)


def test_backup_draws_a_progress_bar_on_a_terminal(tmp_path: Path) -> None:
    config, run = setup(tmp_path)
    for n in range(5):
        run("deliver", "alice@example.com", input=message(n))
    leader, follower = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "wildduck", "--config", str(config), "backup",
                               str(tmp_path / "b.db")], stdout=subprocess.PIPE, stderr=follower, timeout=120)
        os.close(follower)
        follower = -1
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the other end is closed
                break
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(leader)
        if follower >= 0:
            os.close(follower)
    assert proc.returncode == 0
    drawn = b"".join(chunks).decode(errors="replace")
    assert "backup" in drawn and "100%" in drawn
    assert subjects_in(tmp_path / "b.db") == set(range(5))


def test_backup_does_not_overwrite_without_force(tmp_path: Path) -> None:
    _config, run = setup(tmp_path)
    dest = tmp_path / "b.db"
    dest.write_bytes(b"precious")
    refused = run("backup", str(dest), check=False)
    assert refused.returncode == 1 and b"--force" in refused.stderr and dest.read_bytes() == b"precious"
    run("backup", "--force", str(dest))
    assert subjects_in(dest) == set()
    into_dir = run("backup", str(tmp_path)).stdout.decode()
    assert "wildduck-" in into_dir and len(list(tmp_path.glob("wildduck-*.db"))) == 1


def test_restore_refuses_a_running_server_verifies_and_keeps_the_old_database(tmp_path: Path) -> None:
    config, run = setup(tmp_path)
    run("deliver", "alice@example.com", input=message(1))
    run("backup", str(tmp_path / "b.db"))
    run("deliver", "alice@example.com", input=message(2))
    database = tmp_path / "data" / "wildduck.db"

    with ServerProcess(config) as server:
        assert server.proc is not None
        busy = run("restore", "--force", str(tmp_path / "b.db"), check=False)
        assert busy.returncode == 1
        assert f"in use by process {server.proc.pid}".encode() in busy.stderr
    assert subjects_in(database) == {1, 2}  # untouched

    without_force = run("restore", str(tmp_path / "b.db"), check=False)
    assert without_force.returncode == 1 and b"--force" in without_force.stderr

    corrupt = tmp_path / "corrupt.db"
    data = bytearray((tmp_path / "b.db").read_bytes())
    data[4096 * 2:] = b"\x00" * (len(data) - 4096 * 2)
    corrupt.write_bytes(bytes(data))
    bad = run("restore", "--force", str(corrupt), check=False)
    assert bad.returncode == 1 and str(corrupt).encode() in bad.stderr
    assert subjects_in(database) == {1, 2}  # a bad source changes nothing

    restored = run("restore", "--force", str(tmp_path / "b.db")).stdout.decode()
    assert f"restored {tmp_path / 'b.db'} to {database}" in restored
    assert subjects_in(database) == {1}
    (aside,) = database.parent.glob("wildduck.db.before-restore-*[0-9]")  # (not its -wal)
    assert f"kept as {aside}" in restored and subjects_in(aside) == {1, 2}
    # and the server runs on the restored database
    with ServerProcess(config) as server:
        with LMTPClient(*server.address("lmtp"), timeout=30) as c:
            c.lhlo()
            assert c.send_message("s@example.net", ["alice@example.com"], message(3))[1][0][0] == 250
    listing = run("message", "list", "alice").stdout.decode()
    assert "backup test 1" in listing and "backup test 3" in listing and "backup test 2" not in listing
