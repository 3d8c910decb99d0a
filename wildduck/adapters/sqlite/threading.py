"""Thread assignment at ingest (in the write transaction of an append, and in the v13 migration's data step)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from wildduck.adapters._codec import new_id
from wildduck.protocols.mime.headers import message_ids


def assign_thread(conn: sqlite3.Connection, user_id: str, message_id: str | None, refs: Sequence[str],
                  base_subject: str, now: float, thread: str | None = None) -> str:
    """The user's thread for a new message (WildDuck's rule): the thread of any id it has or refers to whose base
    subject is the same (ignoring case), else a new one; its ids are recorded under that thread and subject (the
    first thread recorded for an id and subject keeps it). ``thread``: the message has this thread already (an
    imported one), only its ids are recorded."""
    ids = [*message_ids(message_id)[:1], *refs]
    if not ids:
        return thread or new_id()
    ids = list(dict.fromkeys(ids))
    base_subject = base_subject.casefold()
    if thread is None:
        found = conn.execute(f"SELECT thread_id FROM thread_refs WHERE user_id = ? AND subject = ? AND ref IN "
                             f"({', '.join('?' * len(ids))}) ORDER BY updated DESC LIMIT 1",
                             (user_id, base_subject, *ids)).fetchone()
        thread = found[0] if found is not None else new_id()
    conn.executemany("INSERT INTO thread_refs (user_id, ref, subject, thread_id, updated) VALUES (?, ?, ?, ?, ?) "
                     "ON CONFLICT DO UPDATE SET updated = excluded.updated WHERE thread_id = excluded.thread_id",
                     [(user_id, ref, base_subject, thread, now) for ref in ids])
    return thread
