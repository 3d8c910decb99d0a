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
    s = await open_sqlite_store(tmp_path / "i.db", default_quota=10_000_000)
    try:
        assert s._writer is not None
        plan = " ".join(str(tuple(r)) for r in s._writer.execute(
            "EXPLAIN QUERY PLAN SELECT uid FROM messages WHERE mailbox_id = ? AND text_id IN "
            "(SELECT rowid FROM message_text WHERE body LIKE ?)", ("m", "%abc%")))
        assert "SCAN message_text VIRTUAL TABLE INDEX 0:L" in plan, plan  # the trigram index answers LIKE
        assert "SCAN messages" not in plan, plan  # and the mailbox's messages come from an index too
    finally:
        await s.close()


async def test_group_commit_isolates_failing_jobs(tmp_path: Path) -> None:
    """Writes queued together share one COMMIT, each in a savepoint: a failing one rolls back alone."""
    import trio

    from wildduck.errors import InvalidInput

    s = await open_sqlite_store(tmp_path / "g.db", default_quota=10_000_000)
    try:
        await s._write(lambda conn: conn.execute("CREATE TABLE t (n INTEGER)"))
        outcomes: dict[int, str] = {}

        async def job(n: int) -> None:
            def tx(conn: sqlite3.Connection) -> None:
                conn.execute("INSERT INTO t VALUES (?)", (n,))
                if n % 5 == 0:
                    raise InvalidInput(f"job {n} refuses", "n")

            try:
                await s._write(tx)
                outcomes[n] = "ok"
            except InvalidInput:
                outcomes[n] = "refused"

        async with trio.open_nursery() as nursery:
            for n in range(1, 101):
                nursery.start_soon(job, n)
        rows = await s._read(lambda conn: sorted(r[0] for r in conn.execute("SELECT n FROM t")))
        assert rows == [n for n in range(1, 101) if n % 5]
        assert outcomes == {n: "refused" if n % 5 == 0 else "ok" for n in range(1, 101)}
    finally:
        await s.close()
