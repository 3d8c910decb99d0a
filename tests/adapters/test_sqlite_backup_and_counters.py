"""SQLite only: counters shared by every process of the node, and the backup/verify/restore helpers."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from tests.adapters.conftest import make_user, prepared
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.adapters.sqlite.backup import (
    backup_database,
    database_holder,
    restore_database,
    verify_database,
)
from wildduck.adapters.sqlite.counters import open_sqlite_counters
from wildduck.adapters.sqlite.schema import SCHEMA_VERSION
from wildduck.errors import StoreError
from wildduck.model import NewMessage


async def test_counters_are_shared_by_two_processes_on_one_file(tmp_path: Path) -> None:
    """Two processes of one node (two workers, or a worker and a CLI command) see and change each other's windows,
    slots and leases."""
    server = await open_sqlite_counters(tmp_path / "c.sqlite3")
    cli = await open_sqlite_counters(tmp_path / "c.sqlite3")
    try:
        for _ in range(3):
            await server.increment("auth:u", 120)
        assert (await cli.window("auth:u")).count == 3
        assert (await cli.increment("auth:u", 120)).count == 4  # one window, whoever counts
        await cli.reset("auth:u")
        assert (await server.window("auth:u")).count == 0
        token = await server.acquire_slot("imap:u", 2, 60)
        assert token is not None and await cli.acquire_slot("imap:u", 2, 60) is not None
        assert await cli.acquire_slot("imap:u", 2, 60) is None and await cli.slots("imap:u") == 2
        await server.release_slot("imap:u", token)
        assert await cli.slots("imap:u") == 1
        assert await server.acquire_lease("maintenance", "a", 60)
        assert not await cli.acquire_lease("maintenance", "b", 60)
    finally:
        await cli.close()
        await server.close()


async def test_counters_survive_a_restart_and_expired_ones_are_swept(tmp_path: Path) -> None:
    now = [1000.0]
    s = await open_sqlite_counters(tmp_path / "r.sqlite3", lambda: now[0])
    try:
        await s.increment("kept", 600)
        await s.increment("old", 10)
        await s.acquire_slot("gone", 5, 10)
        now[0] += 20
        for _ in range(256):  # the 256th write sweeps the expired windows and slots
            await s.increment("busy", 600)
        with sqlite3.connect(tmp_path / "r.sqlite3") as conn:
            assert {r[0] for r in conn.execute("SELECT key FROM rate_windows")} == {"kept", "busy"}
            assert conn.execute("SELECT COUNT(*) FROM slots").fetchone()[0] == 0
    finally:
        await s.close()
    s = await open_sqlite_counters(tmp_path / "r.sqlite3", lambda: now[0])
    try:
        assert (await s.window("kept")).count == 1
    finally:
        await s.close()


_RACER = """
import sys, trio
from pathlib import Path
from wildduck.adapters.sqlite.counters import open_sqlite_counters

async def main():
    c = await open_sqlite_counters(Path(sys.argv[1]))
    counts, tokens, leases = [], [], []
    async def one(i):
        counts.append((await c.increment("k", 600)).count)
        if i < 20:
            tokens.append(await c.acquire_slot("s", 7, 600))
            leases.append(await c.acquire_lease("job", sys.argv[2], 600))
    async with trio.open_nursery() as n:
        for i in range(150):
            n.start_soon(one, i)
    await c.close()
    print(" ".join(map(str, counts)), "|", sum(t is not None for t in tokens), "|", sum(leases))

trio.run(main)
"""


def test_concurrent_counting_from_four_processes_is_exact(tmp_path: Path) -> None:
    """The multi-instance contract across processes: 4 × 150 increments give the counts 1..600 exactly once; of
    4 × 20 slot requests with a limit of 7, exactly 7 succeed; one process gets the lease."""
    path = tmp_path / "race.sqlite3"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(path), f"owner{i}"], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    results = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in results]
    outputs = [out for out, _ in results]
    counts = sorted(int(n) for out in outputs for n in out.split("|")[0].split())
    assert counts == list(range(1, 601)), [c for c in counts if counts.count(c) != 1][:20]
    assert sum(int(out.split("|")[1]) for out in outputs) == 7, outputs
    assert [int(out.split("|")[2]) > 0 for out in outputs].count(True) == 1, outputs


async def _store_with_mail(path: Path, messages: int = 3) -> None:
    s = await open_sqlite_store(path)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepared(f"m{i}", (b"att" * 500,)))
                                 for i in range(messages)])
    finally:
        await s.close()


async def test_backup_of_an_open_store_is_one_checked_self_contained_file(tmp_path: Path) -> None:
    src = tmp_path / "live.db"
    await _store_with_mail(src)
    live = await open_sqlite_store(src)  # held open: its last commits may sit in the -wal only
    try:
        user = await live.find_user("alice")
        assert user is not None
        inbox = await live.find_mailbox(user.id, "INBOX")
        await live.append_messages([NewMessage(user.id, inbox.id, prepared("in the wal"))])
        assert database_holder(src) is None  # this process's own connections do not count
        done: list[tuple[int, int]] = []
        info = backup_database(src, tmp_path / "copy.db", progress=lambda d, t: done.append((d, t)))
    finally:
        await live.close()
    assert (info.users, info.messages, info.schema_version) == (1, 4, SCHEMA_VERSION)
    assert done and done[-1][0] == done[-1][1]
    assert not (tmp_path / "copy.db-wal").exists() and not (tmp_path / "copy.db.partial").exists()
    conn = sqlite3.connect(tmp_path / "copy.db")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    conn.close()
    copy = await open_sqlite_store(tmp_path / "copy.db")
    try:
        assert await copy.check_integrity() == []
    finally:
        await copy.close()


async def test_verify_refuses_what_cannot_be_restored(tmp_path: Path) -> None:
    good = tmp_path / "good.db"
    await _store_with_mail(good)
    assert verify_database(good).messages == 3
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(StoreError, match="not a wildduck database"):
        verify_database(other)
    newer = tmp_path / "newer.db"
    newer.write_bytes(good.read_bytes())
    conn = sqlite3.connect(newer)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer than this wildduck"):
        verify_database(newer)
    broken = tmp_path / "broken.db"
    data = bytearray(good.read_bytes())
    data[4096 * 3:4096 * 5] = b"\xff" * 8192  # trash two pages
    broken.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="integrity check|not a usable database|malformed"):
        verify_database(broken)
    with pytest.raises(StoreError, match="does not exist"):
        verify_database(tmp_path / "missing.db")


def test_restore_keeps_the_previous_database_and_its_wal(tmp_path: Path) -> None:
    backup = tmp_path / "backup.db"
    trio.run(_store_with_mail, backup, 2)
    target = tmp_path / "data" / "wildduck.db"
    target.parent.mkdir()
    trio.run(_store_with_mail, target, 5)
    (target.parent / "wildduck.db-wal").write_bytes(b"")  # as a crashed server would leave it
    aside = restore_database(backup, target)
    assert aside is not None and aside.name.startswith("wildduck.db.before-restore-")
    assert Path(f"{aside}-wal").exists() and not Path(f"{target}-wal").exists()
    assert verify_database(target).messages == 2
    assert verify_database(aside).messages == 5


def test_restore_refuses_a_database_another_process_has_open(tmp_path: Path) -> None:
    target = tmp_path / "wildduck.db"
    trio.run(_store_with_mail, target)
    backup = tmp_path / "b.db"
    backup_database(target, backup)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
         "c.execute('PRAGMA journal_mode=WAL'); c.execute('SELECT 1 FROM users').fetchall(); "
         "print('open', flush=True); sys.stdin.read()", str(target)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"open\n"
        assert database_holder(target) == holder.pid
        with pytest.raises(StoreError, match=f"in use by process {holder.pid}"):
            restore_database(backup, target)
    finally:
        holder.communicate(b"", timeout=30)
    assert database_holder(target) is None
    assert restore_database(backup, target) is not None
