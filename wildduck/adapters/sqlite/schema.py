"""SQLite schema and migrations (keyed on ``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence

from wildduck.adapters._codec import index_text, stored_text, thread_columns
from wildduck.adapters.sqlite.codec import (
    IMAP_FORMS,
    SEARCH_COLUMNS,
    SORT_COLUMNS,
    imap_forms,
    own_id,
    parts_load,
    search_columns,
    sort_columns,
    stored_header,
    unpack,
)
from wildduck.adapters.sqlite.threading import assign_thread
from wildduck.errors import StoreError

SCHEMA_V1 = """
CREATE TABLE users (
    id TEXT PRIMARY KEY,
    username TEXT NOT NULL,
    unameview TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    password_hash TEXT NOT NULL,
    quota INTEGER,
    storage_used INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE TABLE addresses (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    address TEXT NOT NULL,
    addrview TEXT NOT NULL UNIQUE,
    main INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL
);
CREATE INDEX addresses_user ON addresses(user_id);
CREATE TABLE mailboxes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    special_use TEXT,
    uid_validity INTEGER NOT NULL,
    uid_next INTEGER NOT NULL DEFAULT 1,
    highest_modseq INTEGER NOT NULL DEFAULT 0,
    subscribed INTEGER NOT NULL DEFAULT 1,
    UNIQUE (user_id, path)
);
CREATE TABLE messages (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    mailbox_id TEXT NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
    uid INTEGER NOT NULL,
    modseq INTEGER NOT NULL,
    flags TEXT NOT NULL,
    internal_date REAL NOT NULL,
    size INTEGER NOT NULL,
    skeleton BLOB NOT NULL,
    skeleton_compressed INTEGER NOT NULL,
    parts TEXT NOT NULL,
    mime_tree TEXT NOT NULL,
    envelope TEXT NOT NULL,
    bodystructure TEXT NOT NULL,
    subject TEXT NOT NULL,
    message_id TEXT,
    header_date REAL,
    has_attachments INTEGER NOT NULL DEFAULT 0,
    search_text TEXT NOT NULL,
    UNIQUE (mailbox_id, uid)
);
CREATE INDEX messages_modseq ON messages(mailbox_id, modseq);
CREATE INDEX messages_user ON messages(user_id);
CREATE TABLE message_blobs (
    message_id TEXT NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    blob TEXT NOT NULL,
    PRIMARY KEY (message_id, blob)
) WITHOUT ROWID;
CREATE INDEX message_blobs_blob ON message_blobs(blob);
CREATE TABLE blobs (
    hash TEXT PRIMARY KEY,
    data BLOB NOT NULL,
    compressed INTEGER NOT NULL,
    raw_size INTEGER NOT NULL,
    stored_size INTEGER NOT NULL,
    refcount INTEGER NOT NULL DEFAULT 0,
    changed REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX blobs_garbage ON blobs(refcount, changed);
CREATE TABLE journal (
    mailbox_id TEXT NOT NULL,
    modseq INTEGER NOT NULL,
    command TEXT NOT NULL,
    uid INTEGER NOT NULL,
    message_id TEXT,
    flags TEXT,
    created REAL NOT NULL
);
CREATE INDEX journal_mailbox ON journal(mailbox_id, modseq);
CREATE INDEX journal_created ON journal(created);
"""

# v2: counters (UIDVALIDITY values never repeat for a mailbox name, even when it is deleted and created again)
SCHEMA_V2 = """
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
"""

# v3: \\Recent: a message is recent until the first read-write session claims it
SCHEMA_V3 = """
ALTER TABLE messages ADD COLUMN recent INTEGER NOT NULL DEFAULT 1;
CREATE INDEX messages_recent ON messages(mailbox_id, recent)
"""

# v4: BODY/TEXT search through an FTS5 trigram index (substring match over case-folded text, ``LIKE`` queries, so
# the index needs no token positions: detail=none, half the size). One text row per stored text, shared by every
# message made from the same delivery or copy (``messages.text_id``); the row goes when its last message does. The
# search text leaves ``messages.search_text`` (kept empty) for the index's own content.
SCHEMA_V4 = [
    "ALTER TABLE messages ADD COLUMN text_id INTEGER",
    "CREATE VIRTUAL TABLE message_text USING fts5(body, head, tokenize = 'trigram', detail = none)",
    "CREATE INDEX messages_text ON messages(text_id)",
    """CREATE TRIGGER messages_text_release AFTER DELETE ON messages
       WHEN old.text_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM messages WHERE text_id = old.text_id)
       BEGIN DELETE FROM message_text WHERE rowid = old.text_id; END""",
]


def _index_existing_text(conn: sqlite3.Connection) -> None:
    """v4 data step: move each message's search text into the index, with its decoded top-level header."""
    from wildduck.protocols.mime.text import header_text

    rows = conn.execute(
        "SELECT rowid, skeleton, skeleton_compressed, mime_tree, search_text FROM messages WHERE text_id IS NULL"
    ).fetchall()
    for rowid, skeleton, compressed, tree_json, body in rows:
        header = stored_header(skeleton, compressed, tree_json)
        text_id = conn.execute("INSERT INTO message_text (body, head) VALUES (?, ?)",
                               (body.casefold(), header_text(header).casefold())).lastrowid
        conn.execute("UPDATE messages SET text_id = ?, search_text = '' WHERE rowid = ?", (text_id, rowid))


# v5: subscriptions belong to names, not mailboxes (RFC 3501 6.3.6: a subscription outlives its mailbox, and a name
# may be subscribed before it exists). ``mailboxes.subscribed`` mirrors the table for the mailboxes that exist.
# Also: a mailbox's MODSEQ starts at 1, never 0 (RFC 7162: HIGHESTMODSEQ is a positive number).
SCHEMA_V5 = """
CREATE TABLE subscriptions (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    PRIMARY KEY (user_id, path)
) WITHOUT ROWID;
INSERT INTO subscriptions (user_id, path) SELECT user_id, path FROM mailboxes WHERE subscribed = 1;
UPDATE mailboxes SET highest_modseq = 1 WHERE highest_modseq = 0
"""


# v6: \\Recent is a per-mailbox watermark (``recent_from``: messages with a UID at or above it are recent until a
# session claims them), starting at the first message still marked recent; the per-message flag goes. And
# ``pruned_modseq``: the highest MODSEQ ``prune_journal`` removed from the mailbox's journal, so readers behind it are
# told (a database from before v6 did not record it: the entries below its oldest one count as pruned).
SCHEMA_V6 = """
ALTER TABLE mailboxes ADD COLUMN recent_from INTEGER NOT NULL DEFAULT 1;
UPDATE mailboxes SET recent_from = COALESCE(
    (SELECT MIN(uid) FROM messages WHERE mailbox_id = mailboxes.id AND recent = 1), uid_next);
DROP INDEX messages_recent;
ALTER TABLE messages DROP COLUMN recent;
ALTER TABLE mailboxes ADD COLUMN pruned_modseq INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET pruned_modseq = COALESCE(
    (SELECT MIN(modseq) - 1 FROM journal WHERE mailbox_id = mailboxes.id), highest_modseq)
"""

# v7: rate-limit windows (the ``Counters`` role's ``increment``/``window``/``reset``) shared by every process of the
# single node: failed-login counts that ``wildduck user unlock`` clears in a running server, and that survive a
# restart. ``closes`` is in seconds since the epoch.
SCHEMA_V7 = """
CREATE TABLE rate_windows (
    key TEXT PRIMARY KEY,
    count INTEGER NOT NULL,
    closes REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX rate_windows_closes ON rate_windows(closes)
"""

# v8: STATUS without counting. Each mailbox row keeps its number of messages, of messages without \\Seen and their
# total size, changed in the write transaction of every append, copy, move, expunge, flag change and deletion (the
# same transaction that allocates the change's MODSEQs, so every process sees them agree with the messages).
# And a covering index of what SELECT reads (UID, MODSEQ, flags), so the snapshot never touches the wide rows.
SCHEMA_V8 = """
ALTER TABLE mailboxes ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN unseen_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE mailboxes ADD COLUMN total_size INTEGER NOT NULL DEFAULT 0;
UPDATE mailboxes SET
    message_count = (SELECT COUNT(*) FROM messages WHERE mailbox_id = mailboxes.id),
    unseen_count = (SELECT COUNT(*) FROM messages WHERE mailbox_id = mailboxes.id
                    AND NOT EXISTS (SELECT 1 FROM json_each(flags) WHERE value = '\\Seen')),
    total_size = (SELECT COALESCE(SUM(size), 0) FROM messages WHERE mailbox_id = mailboxes.id);
CREATE INDEX messages_flags ON messages(mailbox_id, uid, modseq, flags)
"""


# v9: ENVELOPE, BODYSTRUCTURE and BODY kept in their IMAP form (they never change), so FETCH copies bytes instead of
# decoding JSON and serializing it for every message: the form a session without UTF8=ACCEPT gets, and the one a
# session with it gets where that differs (8-bit header text; else NULL). The data step renders every stored message.
SCHEMA_V9 = [f"ALTER TABLE messages ADD COLUMN {column} BLOB" for column in IMAP_FORMS]


def _rewrite_messages(conn: sqlite3.Connection, read: str, columns: Sequence[str],
                      derive: Callable[[sqlite3.Row], Sequence[object]]) -> None:
    """A data step over every stored message, 1,000 rows at a time in rowid order: read the columns ``read``
    (after the rowid) and set ``columns`` to ``derive(row)``."""
    assignments = ", ".join(f"{column} = ?" for column in columns)
    last = -1
    while True:
        rows = conn.execute(f"SELECT rowid, {read} FROM messages WHERE rowid > ? ORDER BY rowid LIMIT 1000",
                            (last,)).fetchall()
        if not rows:
            return
        conn.executemany(f"UPDATE messages SET {assignments} WHERE rowid = ?",
                         [(*derive(row), row[0]) for row in rows])
        last = rows[-1][0]


def _render_imap_forms(conn: sqlite3.Connection) -> None:
    """v9 data step: the IMAP forms of every stored message, from its ENVELOPE and BODYSTRUCTURE JSON."""
    import json

    _rewrite_messages(conn, "envelope, bodystructure", IMAP_FORMS,
                      lambda row: imap_forms(json.loads(row[1]), json.loads(row[2])))


# v10: the rate-limit windows of v7 moved to the node's counters file (``counters.py``: soft state, no fsync per
# count, beside slots and leases that every process of the node shares).
SCHEMA_V10 = "DROP TABLE IF EXISTS rate_windows"


# v11: SEARCH on sent dates and header addresses / subject without reading headers. Each message keeps the sender's
# calendar day of its Date header (``sent_day``, a date ordinal: SENT* compare it, exactly) and, per header key
# (FROM, TO, CC, BCC, SUBJECT), its search values case-folded (``search_<key>``: ``instr`` decides the key, a scan
# of a narrow index instead of decompressing and parsing every header). Two covering indexes: the sent day (a range
# for SENT*) with the header values (scanned for a header key), and the size (a range for LARGER / SMALLER). The data
# step derives the columns from each stored header, with the same code as an ingest; the indexes come after it.
SCHEMA_V11 = ["ALTER TABLE messages ADD COLUMN sent_day INTEGER",
              *(f"ALTER TABLE messages ADD COLUMN {column} TEXT" for column in SEARCH_COLUMNS[1:])]
SCHEMA_V11_INDEXES = [
    f"CREATE INDEX messages_sent ON messages(mailbox_id, sent_day, uid, {', '.join(SEARCH_COLUMNS[1:])})",
    "CREATE INDEX messages_size ON messages(mailbox_id, size, uid)",
]


def _fill_search_columns(conn: sqlite3.Connection) -> None:
    """v11 (and v15) data step: the sent day and header search values of every stored message, from its stored
    header."""
    _rewrite_messages(conn, "skeleton, skeleton_compressed, mime_tree", SEARCH_COLUMNS,
                      lambda row: search_columns(stored_header(row[1], row[2], row[3])))


# v12: what the HTTP API lists and changes of accounts. Users and addresses get tags (as given, JSON; and ``tagsview``,
# the case-folded ones that filters match) and an address its display name. ``authlog``: the authentication log,
# attempts alike (one merge ``key``) counted in one entry per bucket of time (``created``), listed newest first per
# user, removed by maintenance after ``expires``.
SCHEMA_V12 = """
ALTER TABLE users ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE users ADD COLUMN tagsview TEXT NOT NULL DEFAULT '[]';
ALTER TABLE addresses ADD COLUMN name TEXT NOT NULL DEFAULT '';
ALTER TABLE addresses ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE addresses ADD COLUMN tagsview TEXT NOT NULL DEFAULT '[]';
CREATE TABLE authlog (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    key TEXT NOT NULL,
    action TEXT NOT NULL,
    result TEXT NOT NULL,
    protocol TEXT NOT NULL,
    ip TEXT NOT NULL,
    source TEXT NOT NULL,
    created REAL NOT NULL,
    last REAL NOT NULL,
    events INTEGER NOT NULL,
    expires REAL NOT NULL
);
CREATE INDEX authlog_user ON authlog(user_id, id);
CREATE INDEX authlog_merge ON authlog(user_id, key, created);
CREATE INDEX authlog_expires ON authlog(expires)
"""


# v13: OBJECTID, SAVEDATE and threads. Each message keeps its EMAILID (``email_id``: the id it was first stored
# under, kept by copies and moves), its thread (``thread_id``), when it was saved into its mailbox (``saved``), and
# what threading reads (``refs``: the ids it refers to, space-separated; ``base_subject`` and ``subject_reply``,
# RFC 5256 §2.1). ``thread_refs``: per user, which thread a message id with a base subject belongs to (how a reply
# finds its thread at ingest, WildDuck's ``threads``). The data step fills the columns of every stored message from
# its stored header and assigns the threads in storage order, as ingest would have.
SCHEMA_V13 = """
ALTER TABLE messages ADD COLUMN email_id TEXT;
ALTER TABLE messages ADD COLUMN thread_id TEXT;
ALTER TABLE messages ADD COLUMN saved REAL;
ALTER TABLE messages ADD COLUMN refs TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN base_subject TEXT NOT NULL DEFAULT '';
ALTER TABLE messages ADD COLUMN subject_reply INTEGER NOT NULL DEFAULT 0;
CREATE TABLE thread_refs (
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    ref TEXT NOT NULL,
    subject TEXT NOT NULL,
    thread_id TEXT NOT NULL,
    updated REAL NOT NULL,
    PRIMARY KEY (user_id, ref, subject)
) WITHOUT ROWID
"""
SCHEMA_V13_INDEXES = ["CREATE INDEX messages_thread ON messages(mailbox_id, thread_id)"]


def _fill_thread_columns(conn: sqlite3.Connection) -> None:
    """v13 data step: EMAILID, SAVEDATE, the threading columns and the thread of every stored message."""
    last = -1
    while True:
        rows = conn.execute("SELECT rowid, id, user_id, internal_date, subject, message_id, skeleton, "
                            "skeleton_compressed, mime_tree FROM messages WHERE rowid > ? ORDER BY rowid LIMIT 1000",
                            (last,)).fetchall()
        if not rows:
            return
        for row in rows:
            refs, base, reply = thread_columns(stored_header(row[6], row[7], row[8]), row[4])
            thread = assign_thread(conn, row[2], row[5], refs, base, row[3])
            conn.execute("UPDATE messages SET email_id = ?, saved = ?, thread_id = ?, refs = ?, base_subject = ?, "
                         "subject_reply = ? WHERE rowid = ?", (row[1], row[3], thread, " ".join(refs), base,
                                                               int(reply), row[0]))
        last = rows[-1][0]


# v14: SORT without parsing. Each message keeps what SORT compares of its subject and first from / to / cc addresses,
# in collation form (``sort_*``, ``codec.SORT_COLUMNS``: computed at ingest from the decoded Subject and the ENVELOPE's
# IMAP form), and a covering index holds every SORT key (the internal date, the Date header's instant, the size and
# those strings) in UID order: SORT reads a narrow index instead of every wide row. Another one holds what THREAD
# reads: the v13 threading columns, the dates and the message's own id (``own_id``: the first valid id of its
# Message-ID). The data step derives the columns of every stored message with the same code as an ingest; the indexes
# come after it.
SCHEMA_V14 = [*(f"ALTER TABLE messages ADD COLUMN {column} TEXT NOT NULL DEFAULT ''" for column in SORT_COLUMNS),
              "ALTER TABLE messages ADD COLUMN own_id TEXT"]
SCHEMA_V14_INDEXES = [f"CREATE INDEX messages_sort ON messages(mailbox_id, uid, internal_date, header_date, size, "
                      f"{', '.join(SORT_COLUMNS)})",
                      "CREATE INDEX messages_thread_keys ON messages(mailbox_id, uid, base_subject, header_date, "
                      "internal_date, own_id, refs, subject_reply)"]


def _fill_sort_columns(conn: sqlite3.Connection) -> None:
    """v14 data step: the sort keys of every stored message, from its decoded subject and stored ENVELOPE, and its
    own id, from its Message-ID."""
    _rewrite_messages(conn, "subject, imap_envelope, message_id", (*SORT_COLUMNS, "own_id"),
                      lambda row: (*sort_columns(row[1], row[2]), own_id(row[3])))


# v15: SEARCH as Dovecot's for the messages stored before it too. Since then an ingest indexes the text of every
# text/* and message/* part after its transfer and charset decoding (not application/* parts), the headers of every
# part for TEXT, and folds text, header values and needles by RFC 5051 (``searchable.fold``, decomposed) instead of
# ``casefold``; the header search columns hold the normalized address lists and the subject with its white space
# compressed. The data steps derive all of it again for every stored message with the code an ingest runs: the index
# text (``message_text``'s body and head: ``_codec.stored_text``, then ``index_text``) from the message's bytes,
# recomposed from its skeleton, parts and blobs as FETCH reads them and parsed again, once per text row (the
# messages sharing one are copies of one message); the ``search_*`` columns from its stored header (the v11 step;
# ``sent_day``'s derivation did not change, it is written as it was). No schema change, and no lookup falls back to
# the old folding.


def _reindex_text(conn: sqlite3.Connection) -> None:
    """v15 data step: the index text of every stored message as an ingest of its bytes keeps it, 1,000 text rows at
    a time in rowid order, one message recomposed at a time (memory holds one message and its blobs). A message
    whose bytes cannot be had (a blob missing: ``wildduck check`` reports it; parts that do not fit its skeleton)
    keeps its text."""
    from wildduck.adapters.sqlite.queries import read_blobs
    from wildduck.errors import NotFound
    from wildduck.protocols.mime import compose

    last = -1
    while True:
        rows = conn.execute("SELECT t.rowid, (SELECT m.rowid FROM messages m WHERE m.text_id = t.rowid LIMIT 1) "
                            "FROM message_text t WHERE t.rowid > ? ORDER BY t.rowid LIMIT 1000", (last,)).fetchall()
        if not rows:
            return
        for text_id, message in rows:
            if message is None:  # a row of no message (``wildduck check`` reports it)
                continue
            skeleton, compressed, size, stored_parts = conn.execute(
                "SELECT skeleton, skeleton_compressed, size, parts FROM messages WHERE rowid = ?",
                (message,)).fetchone()
            parts = parts_load(stored_parts)
            try:
                raw = compose(unpack(skeleton, compressed, size - sum(p.length for p in parts)), parts,
                              read_blobs(conn, [p.blob for p in parts]))
            except (NotFound, ValueError):  # a blob missing, parts that do not fit the skeleton
                continue
            text = index_text(*stored_text(raw))
            if tuple(conn.execute("SELECT body, head FROM message_text WHERE rowid = ?", (text_id,)).fetchone()) \
                    != text:  # (a message stored since is indexed so already: its row is left as it is)
                conn.execute("UPDATE message_text SET body = ?, head = ? WHERE rowid = ?", (*text, text_id))
        last = rows[-1][0]


#: a step is an SQL script (statements separated by ";"), a list of statements, or a function of the connection
Step = str | list[str] | Callable[[sqlite3.Connection], None]
MIGRATIONS: list[list[Step]] = [[SCHEMA_V1], [SCHEMA_V2], [SCHEMA_V3], [SCHEMA_V4, _index_existing_text], [SCHEMA_V5],
                                [SCHEMA_V6], [SCHEMA_V7], [SCHEMA_V8], [SCHEMA_V9, _render_imap_forms], [SCHEMA_V10],
                                [SCHEMA_V11, _fill_search_columns, SCHEMA_V11_INDEXES], [SCHEMA_V12],
                                [SCHEMA_V13, _fill_thread_columns, SCHEMA_V13_INDEXES],
                                [SCHEMA_V14, _fill_sort_columns, SCHEMA_V14_INDEXES],
                                [_reindex_text, _fill_search_columns]]
#: the schema this version of wildduck writes; every older version (from 1 on) is migrated on open
SCHEMA_VERSION = len(MIGRATIONS)


def _statements(step: str | list[str]) -> list[str]:
    parts = step if isinstance(step, list) else step.split(";")
    return [p for p in parts if p.strip()]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to the newest schema, one transaction per version."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > SCHEMA_VERSION:
        raise StoreError(f"database schema version {version} is newer than this wildduck ({SCHEMA_VERSION}): "
                         "upgrade wildduck, or restore a backup made by this version")
    for number, steps in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for step in steps:
                if callable(step):
                    step(conn)
                else:
                    for statement in _statements(step):
                        conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
