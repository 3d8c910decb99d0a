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


async def test_v4_migration_indexes_existing_text(tmp_path: Path) -> None:
    """A database from before the text index (schema v3) gets its messages indexed, headers included."""
    from wildduck.domain.delivery import prepare

    path = tmp_path / "old.db"
    s = await open_sqlite_store(path, default_quota=10_000_000)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        raw = b"Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nFrom: a@b.example\r\n\r\nthe body text\r\n"
        await s.append_messages([NewMessage(user.id, inbox.id, prepare(raw))])
    finally:
        await s.close()
    conn = sqlite3.connect(path)  # back to v3: text in messages.search_text, no index
    conn.executescript("""
        UPDATE messages SET search_text = (SELECT body FROM message_text WHERE rowid = text_id);
        DROP TRIGGER messages_text_release; DROP INDEX messages_text; DROP TABLE message_text;
        ALTER TABLE messages DROP COLUMN text_id; DROP TABLE subscriptions; PRAGMA user_version = 3;
    """)
    conn.close()
    s = await open_sqlite_store(path, default_quota=10_000_000)
    try:
        assert await s.text_search(inbox.id, "body tex", headers_too=False) == {1}
        assert await s.text_search(inbox.id, "grüße", headers_too=True) == {1}
        assert await s.text_search(inbox.id, "grüße", headers_too=False) == set()
        assert await s.check_integrity() == []
        assert "INBOX" in await s.list_subscriptions(user.id)  # v5: subscriptions carried over
    finally:
        await s.close()


async def test_text_search_uses_the_index(tmp_path: Path) -> None:
    """The trigram index answers the LIKE and drives the join (a rare needle never scans the mailbox)."""
    s = await open_sqlite_store(tmp_path / "i.db", default_quota=10_000_000)
    seen: list[str] = []
    try:
        assert s._writer is not None
        real_read = s._read

        async def traced(fn):  # type: ignore[no-untyped-def]
            def run(conn: sqlite3.Connection):  # type: ignore[no-untyped-def]
                conn.set_trace_callback(seen.append)
                try:
                    return fn(conn)
                finally:
                    conn.set_trace_callback(None)
            return await real_read(run)

        s._read = traced  # type: ignore[method-assign]
        await s.text_search("m", "abc", headers_too=True)
        query = next(q for q in seen if "LIKE" in q)
        plan = " ".join(str(tuple(r)) for r in s._writer.execute("EXPLAIN QUERY PLAN " + query))
        assert "SCAN t VIRTUAL TABLE INDEX 0:L" in plan, plan  # the trigram index answers LIKE
        assert "SEARCH m USING INDEX messages_text" in plan, plan  # and finds the messages by text id
    finally:
        await s.close()
