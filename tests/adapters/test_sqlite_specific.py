"""SQLite-only settings and the integrity checker."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

from tests.adapters.conftest import make_user, prepared
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.adapters.sqlite.codec import IMAP_FORMS, SEARCH_COLUMNS, SORT_COLUMNS
from wildduck.domain.messages import prepare
from wildduck.model import NewMessage
from wildduck.model import search as q
from wildduck.protocols.imap import serializer
from wildduck.protocols.mime import bodystructure

#: back from v14 to v13: the sort keys and the indexes of SORT and THREAD go
_DROP_V14 = "DROP INDEX messages_sort; DROP INDEX messages_thread_keys;\n" + "".join(
    f"ALTER TABLE messages DROP COLUMN {column};\n" for column in (*SORT_COLUMNS, "own_id"))
#: back from v13 to v12: EMAILID, SAVEDATE and the threads go (and what came after them)
_DROP_V13 = _DROP_V14 + "DROP INDEX messages_thread; DROP TABLE thread_refs;\n" + "".join(
    f"ALTER TABLE messages DROP COLUMN {column};\n"
    for column in ("email_id", "thread_id", "saved", "refs", "base_subject", "subject_reply"))
#: back from v12 to v11: account tags, address names and the authentication log go
_DROP_V12 = "DROP TABLE authlog;\n" + "".join(
    f"ALTER TABLE {table} DROP COLUMN {column};\n"
    for table, column in (("users", "tags"), ("users", "tagsview"), ("addresses", "name"), ("addresses", "tags"),
                          ("addresses", "tagsview")))
#: back from v11 to v10: the search columns and their indexes go (and what came after them)
_DROP_V11 = _DROP_V13 + _DROP_V12 + "DROP INDEX messages_sent; DROP INDEX messages_size;\n" + "".join(
    f"ALTER TABLE messages DROP COLUMN {column};\n" for column in SEARCH_COLUMNS)
#: back from v9 (and v11) to v8: the IMAP forms of the message structure go too
_DROP_V9 = _DROP_V11 + "".join(f"ALTER TABLE messages DROP COLUMN {column};\n" for column in IMAP_FORMS)


async def test_pragmas(tmp_path: Path) -> None:
    for mode, expected in (("full", 2), ("normal", 1)):
        s = await open_sqlite_store(tmp_path / f"{mode}.db", synchronous=mode)
        try:
            assert s._writer is not None
            assert s._writer.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert s._writer.execute("PRAGMA synchronous").fetchone()[0] == expected
            assert s._writer.execute("PRAGMA foreign_keys").fetchone()[0] == 1
        finally:
            await s.close()


async def test_integrity_check_finds_corruption(tmp_path: Path) -> None:
    s = await open_sqlite_store(tmp_path / "c.db")
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
    s = await open_sqlite_store(tmp_path / "c.db")
    try:
        problems = await s.check_integrity()
        assert problems and "refcount 7" in problems[0]
    finally:
        await s.close()


async def test_v4_migration_indexes_existing_text(tmp_path: Path) -> None:
    """A database from before the text index (schema v3) gets its messages indexed, headers included."""
    path = tmp_path / "old.db"
    s = await open_sqlite_store(path)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepared("the body text",
                                                                        subject="=?utf-8?q?Gr=C3=BC=C3=9Fe?="))])
    finally:
        await s.close()
    conn = sqlite3.connect(path)  # back to v3: text in messages.search_text, no index
    conn.executescript(_DROP_V9 + """
        DROP INDEX messages_flags; ALTER TABLE mailboxes DROP COLUMN message_count;
        ALTER TABLE mailboxes DROP COLUMN unseen_count; ALTER TABLE mailboxes DROP COLUMN total_size;
        UPDATE messages SET search_text = (SELECT body FROM message_text WHERE rowid = text_id);
        DROP TRIGGER messages_text_release; DROP INDEX messages_text; DROP TABLE message_text;
        ALTER TABLE messages DROP COLUMN text_id; DROP TABLE subscriptions;
        ALTER TABLE mailboxes DROP COLUMN recent_from; ALTER TABLE mailboxes DROP COLUMN pruned_modseq;
        ALTER TABLE messages ADD COLUMN recent INTEGER NOT NULL DEFAULT 1;
        CREATE INDEX messages_recent ON messages(mailbox_id, recent);
        PRAGMA user_version = 3;
    """)
    conn.close()
    s = await open_sqlite_store(path)
    try:
        assert await s.text_search(inbox.id, "body tex", headers_too=False) == {1}
        assert await s.text_search(inbox.id, "gr", headers_too=True) == {1}  # short needles too
        assert await s.text_search(inbox.id, "grüße", headers_too=True) == {1}
        assert await s.text_search(inbox.id, "grüße", headers_too=False) == set()
        assert await s.check_integrity() == []
        assert "INBOX" in await s.list_subscriptions(user.id)  # v5: subscriptions carried over
    finally:
        await s.close()


async def test_v6_migration_turns_recent_flags_into_a_watermark(tmp_path: Path) -> None:
    """A v5 database kept \\Recent per message; v6 starts each mailbox's watermark at its first recent message and
    counts the journal below its oldest entry as pruned."""
    path = tmp_path / "v5.db"
    s = await open_sqlite_store(path)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        trash = await s.find_mailbox(user.id, "Trash")
        await s.append_messages([NewMessage(user.id, inbox.id, prepared()) for _ in range(4)])
        await s.append_messages([NewMessage(user.id, trash.id, prepared())])
    finally:
        await s.close()
    conn = sqlite3.connect(path)  # back to v5: a recent column, no watermark
    conn.executescript(_DROP_V9 + """
        DROP INDEX messages_flags; ALTER TABLE mailboxes DROP COLUMN message_count;
        ALTER TABLE mailboxes DROP COLUMN unseen_count; ALTER TABLE mailboxes DROP COLUMN total_size;
        ALTER TABLE mailboxes DROP COLUMN recent_from; ALTER TABLE mailboxes DROP COLUMN pruned_modseq;
        ALTER TABLE messages ADD COLUMN recent INTEGER NOT NULL DEFAULT 1;
        CREATE INDEX messages_recent ON messages(mailbox_id, recent);
        UPDATE messages SET recent = 0 WHERE uid <= 2 OR mailbox_id = (SELECT id FROM mailboxes WHERE path = 'Trash');
        DELETE FROM journal WHERE modseq <= 3 AND mailbox_id = (SELECT id FROM mailboxes WHERE path = 'INBOX');
        PRAGMA user_version = 5;
    """)
    conn.close()
    s = await open_sqlite_store(path)
    try:
        assert (await s.get_mailbox(inbox.id)).recent_from == 3
        assert (await s.mailbox_status(inbox.id)).recent == 2
        assert (await s.get_mailbox(trash.id)).recent_from == 2  # nothing recent: uid_next
        assert (await s.read_journal(inbox.id, 2)).pruned  # entries 2 and 3 were deleted before v6
        page = await s.read_journal(inbox.id, 3)
        assert not page.pruned and [e.modseq for e in page.entries] == [4, 5]
        assert not (await s.read_journal(trash.id, 1)).pruned
        columns = {r[1] for r in s._writer.execute("PRAGMA table_info(messages)")}  # type: ignore[union-attr]
        assert "recent" not in columns
        assert await s.check_integrity() == []
    finally:
        await s.close()


async def test_v8_migration_fills_the_mailbox_counters(tmp_path: Path) -> None:
    """A v7 database counted STATUS from the messages; v8 keeps the counts in the mailbox row, filled by the
    migration from a recount, and adds the covering index SELECT reads."""
    path = tmp_path / "v7.db"
    s = await open_sqlite_store(path)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        trash = await s.find_mailbox(user.id, "Trash")
        await s.append_messages([NewMessage(user.id, inbox.id, prepared(), flags=flags)
                                 for flags in [("\\Seen",), (), ("\\Flagged",), ("\\Seen", "$x")]])
        await s.append_messages([NewMessage(user.id, trash.id, prepared())])
        before = {box.id: await s.mailbox_status(box.id) for box in (inbox, trash)}
    finally:
        await s.close()
    conn = sqlite3.connect(path)  # back to v7
    conn.executescript(_DROP_V9 + """
        DROP INDEX messages_flags; ALTER TABLE mailboxes DROP COLUMN message_count;
        ALTER TABLE mailboxes DROP COLUMN unseen_count; ALTER TABLE mailboxes DROP COLUMN total_size;
        PRAGMA user_version = 7;
    """)
    conn.close()
    s = await open_sqlite_store(path)
    try:
        for box_id, status in before.items():
            after = await s.mailbox_status(box_id)
            assert (after.messages, after.unseen, after.size, after.recent, after.first_unseen) == (
                status.messages, status.unseen, status.size, status.recent, status.first_unseen)
        assert (before[inbox.id].messages, before[inbox.id].unseen) == (4, 2)
        indexes = {r[1] for r in s._writer.execute("PRAGMA index_list(messages)")}  # type: ignore[union-attr]
        assert "messages_flags" in indexes
        assert await s.check_integrity() == []
    finally:
        await s.close()


async def test_v9_migration_renders_the_imap_forms(tmp_path: Path) -> None:
    """A v8 database serialized ENVELOPE and BODYSTRUCTURE at every FETCH; v9 keeps their IMAP forms (with and
    without UTF8=ACCEPT) in the row, rendered by the migration: the bytes FETCH sent before."""
    path = tmp_path / "v8.db"
    raws = [b"Subject: plain\r\nFrom: A <a@example.com>\r\n\r\nhi\r\n",
            "Subject: Grüße \"x\"\r\nFrom: Jörg <j@example.com>\r\nTo: b@example.com\r\n\r\nhi\r\n".encode(),
            b"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: message/rfc822\r\n\r\n"
            b"Subject: inner \xff\r\n\r\nx\r\n--b--\r\n"]
    s = await open_sqlite_store(path)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepare(raw)) for raw in raws])
        fresh = await s.get_messages(inbox.id, [1, 2, 3])
    finally:
        await s.close()
    conn = sqlite3.connect(path)  # back to v8
    conn.executescript(_DROP_V9 + "PRAGMA user_version = 8;")
    conn.close()
    s = await open_sqlite_store(path)
    try:
        full = await s.get_messages(inbox.id, [1, 2, 3])
        meta = await s.get_messages(inbox.id, [1, 2, 3], content=False)
        for before, whole, light in zip(fresh, full, meta, strict=True):
            for utf8 in (False, True):
                expected = (serializer.envelope(whole.envelope, utf8=utf8),
                            serializer.body_structure(whole.bodystructure, utf8=utf8),
                            serializer.body_structure(bodystructure.body(whole.bodystructure), utf8=utf8))
                for r in (before, whole, light):
                    forms = (r.imap_envelope, r.imap_bodystructure, r.imap_body)
                    if utf8:
                        wide = (r.imap_envelope_utf8, r.imap_bodystructure_utf8, r.imap_body_utf8)
                        forms = tuple(w if w is not None else f for w, f in zip(wide, forms, strict=True))
                    assert forms == expected
            assert (light.envelope, light.bodystructure, light.skeleton) == (None, None, b"")
            assert (light.flags, light.size, light.internal_date) == (whole.flags, whole.size, whole.internal_date)
        assert full[0].imap_envelope_utf8 is None and full[1].imap_envelope_utf8 is not None
        assert full[2].imap_bodystructure_utf8 is not None  # the 8-bit subject of the encapsulated message
        assert await s.check_integrity() == []
    finally:
        await s.close()


async def test_v11_migration_fills_the_search_columns(tmp_path: Path) -> None:
    """A v10 database decided SENT* and the header keys by parsing every header; v11 keeps the sent day and the
    header search values in columns, filled by the migration with what an ingest writes, and indexed."""
    path = tmp_path / "v10.db"
    raws = [b"From: Alpha <alpha@example.com>\r\nTo: b@example.com\r\nSubject: Alpha\r\n"
            b"Date: Tue, 10 Mar 2026 23:30:00 -0800\r\n\r\nhi\r\n",
            "Subject: Grüße\r\nFrom: =?utf-8?q?J=C3=B6rg?= <j@example.com>\r\nCc: c@x\r\nCc: d@y\r\n"
            "Bcc: e@z\r\n\r\nhi\r\n".encode(),
            b"Date: garbage\r\n\r\nno addresses\r\n"]
    columns = ", ".join(SEARCH_COLUMNS)
    s = await open_sqlite_store(path)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepare(raw)) for raw in raws])
    finally:
        await s.close()
    conn = sqlite3.connect(path)
    fresh = conn.execute(f"SELECT {columns} FROM messages ORDER BY uid").fetchall()
    conn.executescript(_DROP_V11 + "PRAGMA user_version = 10;")  # back to v10
    conn.close()
    assert fresh == [
        # as Dovecot's keys see them (``searchable.values``): addresses normalized, folded by RFC 5051 (NFD)
        (dt.date(2026, 3, 10).toordinal(), "alpha <alpha@example.com>", "<b@example.com>", None, None, "alpha"),
        (None, "jo\u0308rg <j@example.com>", None, "<c@x>\n<d@y>", "<e@z>", "gru\u0308ße"),
        (None, None, None, None, None, None)]
    s = await open_sqlite_store(path)
    try:
        rows = s._writer.execute(f"SELECT {columns} FROM messages ORDER BY uid").fetchall()  # type: ignore[union-attr]
        assert [tuple(r) for r in rows] == fresh
        indexes = {r[1] for r in s._writer.execute("PRAGMA index_list(messages)")}  # type: ignore[union-attr]
        assert {"messages_sent", "messages_size"} <= indexes
        assert await s.candidates(inbox.id, q.Date("sent", "on", dt.date(2026, 3, 10))) == {1}
        assert await s.candidates(inbox.id, q.Header("cc", "D@Y")) == {2}
        assert await s.candidates(inbox.id, q.Not(q.Header("from", ""))) == {3}
        assert await s.check_integrity() == []
    finally:
        await s.close()


async def test_v13_migration_threads_what_was_stored(tmp_path: Path) -> None:
    """A v12 database had no EMAILID, SAVEDATE or threads: the migration gives every message its own id as EMAILID,
    its internal date as SAVEDATE, and the threads an ingest in the same order would have given."""
    path = tmp_path / "v12.db"
    raws = [b"Message-ID: <a@x>\r\nSubject: Plans\r\n\r\nfirst\r\n",
            b"Message-ID: <b@x>\r\nIn-Reply-To: <a@x>\r\nSubject: Re: [list] Plans\r\n\r\nreply\r\n",
            b"Message-ID: <c@x>\r\nReferences: <a@x> <b@x>\r\nSubject: Re: plans\r\n\r\ncase differs\r\n",
            b"Message-ID: <d@x>\r\nReferences: <a@x>\r\nSubject: Other topic\r\n\r\nanother subject\r\n",
            b"Subject: Plans\r\n\r\nno ids\r\n"]
    s = await open_sqlite_store(path)
    try:
        user = await make_user(s)
        inbox = await s.find_mailbox(user.id, "INBOX")
        await s.append_messages([NewMessage(user.id, inbox.id, prepare(raw)) for raw in raws])
        fresh = await s.get_messages(inbox.id, [1, 2, 3, 4, 5], content=False)
    finally:
        await s.close()
    threads = [r.thread_id for r in fresh]
    assert threads[0] == threads[1] == threads[2] != threads[3]  # base subjects compare ignoring case
    assert len(set(threads)) == 3 and threads[4] not in threads[:4]
    assert [r.references for r in fresh] == [(), ("a@x",), ("a@x", "b@x"), ("a@x",), ()]
    assert [r.base_subject for r in fresh] == ["Plans", "Plans", "plans", "Other topic", "Plans"]
    assert [r.subject_reply for r in fresh] == [False, True, True, False, False]
    assert all(r.email_id == r.id for r in fresh)
    conn = sqlite3.connect(path)
    conn.executescript(_DROP_V13 + "PRAGMA user_version = 12;")  # back to v12
    conn.close()
    s = await open_sqlite_store(path)
    try:
        migrated = await s.get_messages(inbox.id, [1, 2, 3, 4, 5], content=False)
        again = [r.thread_id for r in migrated]
        assert again[0] == again[1] == again[2] and len(set(again)) == 3 and again[4] not in again[:4]
        assert [(r.email_id, r.saved) for r in migrated] == [(r.id, r.internal_date) for r in migrated]
        assert [r.references for r in migrated] == [r.references for r in fresh]
        assert [(r.base_subject, r.subject_reply) for r in migrated] == [(r.base_subject, r.subject_reply)
                                                                         for r in fresh]
        assert await s.check_integrity() == []
    finally:
        await s.close()


async def test_v15_migration_reindexes_for_search(tmp_path: Path) -> None:
    """A v14 database kept the index text and header search values an older version derived (text/plain and
    text/html parts only, ``casefold``): v15 derives them again from each message's bytes (recomposed with its
    blobs), and every row and answer then equals a fresh ingest's, in both mailboxes sharing the text rows."""
    from tests.adapters.test_search_reindex import corpus, expected_fresh, fill, old_index, stored

    path = tmp_path / "store.db"
    columns = ", ".join(SEARCH_COLUMNS)
    s = await open_sqlite_store(path)
    try:
        messages = await fill(s)
        fresh = await stored(s, messages)
    finally:
        await s.close()
    expected_fresh(fresh[0])
    assert fresh[0] == fresh[1]
    conn = sqlite3.connect(path)
    rows = f"SELECT m.mailbox_id, m.uid, t.body, t.head, {columns} FROM messages m " \
           "JOIN message_text t ON t.rowid = m.text_id ORDER BY m.mailbox_id, m.uid"
    fresh_rows = conn.execute(rows).fetchall()
    assert len(fresh_rows) == 2 * messages
    assert conn.execute("SELECT COUNT(*) FROM message_text").fetchone()[0] == messages  # copies share their text
    with conn:  # as the version before indexed them
        for uid, raw in enumerate(corpus(), start=1):
            body, head, values = old_index(raw)
            conn.execute("UPDATE message_text SET body = ?, head = ? WHERE rowid = (SELECT text_id FROM messages "
                         "WHERE uid = ? LIMIT 1)", (body, head, uid))
            conn.execute(f"UPDATE messages SET {', '.join(f'search_{k} = ?' for k in values)} WHERE uid = ?",
                         (*values.values(), uid))
    conn.close()
    s = await open_sqlite_store(path)  # still v15: the older rows answer as they did
    try:
        old = await stored(s, messages)
    finally:
        await s.close()
    assert old != fresh
    assert [a for a, b in zip(old[0], fresh[0], strict=True) if a != b]
    conn = sqlite3.connect(path)
    assert conn.execute(rows).fetchall() != fresh_rows
    conn.execute("PRAGMA user_version = 14")  # back to v14 (v15 changed no schema, only the rows)
    conn.close()
    s = await open_sqlite_store(path)
    try:
        assert s._writer.execute("PRAGMA user_version").fetchone()[0] == 15  # type: ignore[union-attr]
        assert [tuple(r) for r in s._writer.execute(rows)] == fresh_rows  # type: ignore[union-attr]
        assert await stored(s, messages) == fresh
        assert await s.check_integrity() == []
    finally:
        await s.close()


async def test_text_search_uses_the_index(tmp_path: Path) -> None:
    """The trigram index answers the LIKE and drives the join (a rare needle never scans the mailbox)."""
    s = await open_sqlite_store(tmp_path / "i.db")
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
