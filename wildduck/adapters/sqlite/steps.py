"""Steps inside a write transaction that several roles take (each the one place for its rule): mailbox rows,
UIDVALIDITY, MODSEQ allocation, the mailbox counters, journal rows, blob reference counts and message removal."""

from __future__ import annotations

import sqlite3
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from wildduck.adapters.sqlite import codec
from wildduck.adapters.sqlite.queries import select_in
from wildduck.errors import NotFound
from wildduck.model import JournalOp, MailboxSpec

#: one journal row: (mailbox_id, modseq, op, uid, message_id, flags JSON or None, created)
JournalRow = tuple[str, int, JournalOp, int, str, str | None, float]


def one(conn: sqlite3.Connection, sql: str, args: Sequence[Any], missing: str) -> sqlite3.Row:
    """The first row of ``sql``; NotFound(``missing``) when there is none."""
    row: sqlite3.Row | None = conn.execute(sql, args).fetchone()
    if row is None:
        raise NotFound(missing)
    return row


def next_uid_validity(conn: sqlite3.Connection, user_id: str, now: float) -> int:
    """A UIDVALIDITY for a new mailbox of the user: the creation time, but always above every earlier one, so a
    mailbox deleted and created again within a second still gets a new value (RFC 3501 2.3.1.1)."""
    name = f"uidvalidity:{user_id}"
    row = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    value = max(int(now), row[0] + 1 if row else 1) & 0xFFFFFFFF or 1
    conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
                 (name, value, value))
    return value


def insert_mailbox(conn: sqlite3.Connection, mid: str, user_id: str, spec: MailboxSpec, now: float) -> None:
    """A new mailbox row; it is subscribed if its name is (an earlier subscription) or ``spec`` asks for it."""
    if spec.subscribed:
        conn.execute("INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)", (user_id, spec.path))
    conn.execute(
        "INSERT INTO mailboxes (id, user_id, path, special_use, uid_validity, highest_modseq, subscribed) "
        "VALUES (?, ?, ?, ?, ?, 1, EXISTS (SELECT 1 FROM subscriptions WHERE user_id = ? AND path = ?))",
        (mid, user_id, spec.path, spec.special_use, next_uid_validity(conn, user_id, now), user_id, spec.path))


def sync_subscribed(conn: sqlite3.Connection, user_id: str) -> None:
    """Make ``mailboxes.subscribed`` mirror the subscriptions table for every mailbox of the user."""
    conn.execute("UPDATE mailboxes SET subscribed = EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = "
                 "mailboxes.user_id AND s.path = mailboxes.path) WHERE user_id = ?", (user_id,))


def allocate(conn: sqlite3.Connection, mailbox_id: str, uids: int, modseqs: int) -> sqlite3.Row:
    """Reserve ``uids`` UIDs and ``modseqs`` MODSEQs of the mailbox in one step. The row holds ``first_uid`` and
    ``base_modseq`` (the first reserved MODSEQ is that + 1) and ``uid_validity``; NotFound if the mailbox is gone."""
    return one(
        conn,
        "UPDATE mailboxes SET uid_next = uid_next + ?1, highest_modseq = highest_modseq + ?2 WHERE id = ?3 "
        "RETURNING uid_next - ?1 AS first_uid, highest_modseq - ?2 AS base_modseq, uid_validity",
        (uids, modseqs, mailbox_id), f"no mailbox {mailbox_id}")


def unseen(flags_json: str) -> int:
    """1 if the stored flag list lacks ``\\Seen`` (what the ``unseen_count`` counter counts), else 0."""
    return 0 if "\\Seen" in codec.flags_load(flags_json) else 1


def count_messages(conn: sqlite3.Connection, mailbox_id: str, messages: int, unseen: int, size: int) -> None:
    """Change the mailbox's counters (``message_count``, ``unseen_count``, ``total_size``) by these amounts, in the
    transaction of the change they count. Every change to a mailbox's messages or their flags goes through here."""
    if messages or unseen or size:
        conn.execute("UPDATE mailboxes SET message_count = message_count + ?, unseen_count = unseen_count + ?, "
                     "total_size = total_size + ? WHERE id = ?", (messages, unseen, size, mailbox_id))


def write_journal(conn: sqlite3.Connection, rows: Iterable[JournalRow]) -> None:
    """Journal entries, in the transaction of the change they record."""
    conn.executemany("INSERT INTO journal (mailbox_id, modseq, command, uid, message_id, flags, created) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?)", [(m, s, str(op), u, i, f, c) for m, s, op, u, i, f, c in rows])


def adjust_refs(conn: sqlite3.Connection, counts: Mapping[str, int], now: float) -> None:
    """Add ``counts[blob]`` (negative: release) to each blob's reference count; the change time starts the
    collector's grace period."""
    conn.executemany("UPDATE blobs SET refcount = refcount + ?, changed = ? WHERE hash = ?",
                     [(n, now, blob) for blob, n in counts.items() if n])


def remove_messages(conn: sqlite3.Connection, mailbox_id: str, uids: Sequence[int], now: float, *,
                    release: bool = True, journal: bool = True) -> list[int]:
    """Delete messages of the mailbox; returns the UIDs removed, ascending.

    With ``release`` their blob references and storage are given back (a MOVE hands both to the copies); with
    ``journal`` each removal gets a new MODSEQ and an EXPUNGE entry (a deleted mailbox takes its journal along).
    """
    wanted = sorted(set(uids))
    rows = select_in(conn, "SELECT id, uid, size, user_id, flags FROM messages WHERE mailbox_id = ? AND uid IN ({in}) "
                     "ORDER BY uid", wanted, (mailbox_id,))
    if not rows:
        return []
    ids = [r["id"] for r in rows]
    count_messages(conn, mailbox_id, -len(rows), -sum(unseen(r["flags"]) for r in rows), -sum(r["size"] for r in rows))
    if release:
        refs = Counter(r[0] for r in select_in(conn, "SELECT blob FROM message_blobs WHERE message_id IN ({in})",
                                               ids))
        adjust_refs(conn, {blob: -n for blob, n in refs.items()}, now)
        freed: Counter[str] = Counter()
        for r in rows:
            freed[r["user_id"]] += r["size"]
        conn.executemany("UPDATE users SET storage_used = MAX(0, storage_used - ?) WHERE id = ?",
                         [(size, user) for user, size in freed.items()])
    conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
    if journal:
        base = allocate(conn, mailbox_id, 0, len(rows))["base_modseq"]
        write_journal(conn, [(mailbox_id, base + k + 1, JournalOp.EXPUNGE, r["uid"], r["id"], None, now)
                             for k, r in enumerate(rows)])
    return [r["uid"] for r in rows]


def add_storage(conn: sqlite3.Connection, user_id: str, size: int, quota: int | None) -> bool:
    """The one conditional increment of a user's storage: adds ``size`` only if the result stays within
    ``quota`` (None: no limit). False when it does not fit (or the user is gone)."""
    return conn.execute(
        "UPDATE users SET storage_used = storage_used + ?1 WHERE id = ?2 AND (?3 IS NULL OR storage_used + ?1 <= ?3)",
        (size, user_id, quota)).rowcount == 1

