"""SQLite-only settings and the integrity checker."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.adapters.conftest import make_user, prepared
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.domain.models import NewMessage


async def test_pragmas(tmp_path: Path) -> None:
    for mode, expected in (("full", 2), ("normal", 1)):
        s = await open_sqlite_store(tmp_path / f"{mode}.db", default_quota=1, synchronous=mode)
        try:
            assert s._writer is not None
            assert s._writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert s._writer.execute("PRAGMA synchronous").fetchone()[0] == expected
            assert s._writer.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        finally:
            await s.close()


async def test_integrity_check_finds_corruption(tmp_path: Path) -> None:
    s = await open_sqlite_store(tmp_path / "c.db", default_quota=10_000_000)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        p = prepared("x", (b"attachment" * 100,))
        await s.append_messages([NewMessage(user.id, inbox.id, p)])
        assert await s.check_integrity() == []
        storage_bytes = await s.storage_bytes()
        assert storage_bytes > 0
    finally:
        await s.close()
    conn = sqlite3.connect(tmp_path / "c.db")
    conn.execute("UPDATE blobs SET refcount = 7")
    conn.commit()
    conn.close()
    s = await open_sqlite_store(tmp_path / "c.db", default_quota=10_000_000)
    try:
        problems = await s.check_integrity()
        assert problems and "refcount 7" in problems[0]
    finally:
        await s.close()
