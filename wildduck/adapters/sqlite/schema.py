"""SQLite schema and migrations (keyed on ``PRAGMA user_version``)."""

from __future__ import annotations

import sqlite3

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

MIGRATIONS: list[str] = [SCHEMA_V1, SCHEMA_V2, SCHEMA_V3]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the database to the newest schema, one transaction per step."""
    version = conn.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise RuntimeError(f"database schema version {version} is newer than this wildduck ({len(MIGRATIONS)})")
    for number, script in enumerate(MIGRATIONS[version:], start=version + 1):
        conn.execute("BEGIN IMMEDIATE")
        try:
            for statement in script.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
