"""The ``Mailboxes`` role on SQLite: a user's mailboxes, subscriptions and status."""

from __future__ import annotations

import sqlite3
import time

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.queries import select_in
from wildduck.adapters.sqlite.steps import insert_mailbox, one, remove_messages, sync_subscribed
from wildduck.errors import AlreadyExists
from wildduck.model import Mailbox, MailboxSpec, MailboxStatus

#: a message's flags (JSON text) hold ``\\Seen`` exactly
SEEN_SQL = "EXISTS (SELECT 1 FROM json_each(flags) WHERE value = '\\Seen')"


def mailbox_row(conn: sqlite3.Connection, mailbox_id: str) -> sqlite3.Row:
    """The mailbox's row, or NotFound."""
    return one(conn, "SELECT * FROM mailboxes WHERE id = ?", (mailbox_id,), f"no mailbox {mailbox_id}")


class MailboxesRole(StoreBase):
    """``Mailboxes``: paths, subscriptions (kept by name) and status."""

    async def list_mailboxes(self, user_id: str) -> list[Mailbox]:
        """Every mailbox of the user, INBOX first, then by path."""
        return await self._read(lambda conn: [
            codec.mailbox(r) for r in conn.execute(
                "SELECT * FROM mailboxes WHERE user_id = ? ORDER BY path = 'INBOX' DESC, path", (user_id,))
        ])

    async def get_mailbox(self, mailbox_id: str) -> Mailbox:
        return await self._read(lambda conn: codec.mailbox(mailbox_row(conn, mailbox_id)))

    async def find_mailbox(self, user_id: str, path: str) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute("SELECT * FROM mailboxes WHERE user_id = ? AND path = ?", (user_id, path)).fetchone()
            return codec.mailbox(row) if row else None

        return await self._read(q)

    async def create_mailbox(self, user_id: str, spec: MailboxSpec) -> Mailbox:
        def tx(conn: sqlite3.Connection) -> Mailbox:
            one(conn, "SELECT 1 FROM users WHERE id = ?", (user_id,), f"no user {user_id}")
            if conn.execute("SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?", (user_id, spec.path)).fetchone():
                raise AlreadyExists(f"mailbox {spec.path!r} exists")
            mid = codec.new_id()
            insert_mailbox(conn, mid, user_id, spec, time.time())
            return codec.mailbox(mailbox_row(conn, mid))

        return await self._write(tx)

    async def rename_mailbox(self, mailbox_id: str, new_path: str) -> list[Mailbox]:
        """Rename the mailbox and those below it in one transaction; returns them renamed, by path."""
        def tx(conn: sqlite3.Connection) -> list[Mailbox]:
            row = mailbox_row(conn, mailbox_id)
            old, user_id = row["path"], row["user_id"]
            children = conn.execute(
                "SELECT id, path FROM mailboxes WHERE user_id = ? AND substr(path, 1, ?) = ?",
                (user_id, len(old) + 1, old + "/")).fetchall()
            moves = [(mailbox_id, new_path)] + [(c["id"], new_path + c["path"][len(old):]) for c in children]
            ids = [mid for mid, _ in moves]
            for _mid, path in moves:
                clash = conn.execute("SELECT id FROM mailboxes WHERE user_id = ? AND path = ?",
                                     (user_id, path)).fetchone()
                if clash is not None and clash["id"] not in ids:
                    raise AlreadyExists(f"mailbox {path!r} exists")
            # two steps, so that swapping names inside the renamed subtree never hits the unique index
            conn.executemany("UPDATE mailboxes SET path = ? WHERE id = ?",
                             [("\x00renaming/" + mid, mid) for mid in ids])
            conn.executemany("UPDATE mailboxes SET path = ? WHERE id = ?", [(path, mid) for mid, path in moves])
            # subscriptions move with the names (a subscription already held by a new name stays as it is)
            renamed = conn.execute(
                "DELETE FROM subscriptions WHERE user_id = ? AND (path = ? OR substr(path, 1, ?) = ?) RETURNING path",
                (user_id, old, len(old) + 1, old + "/")).fetchall()
            conn.executemany("INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)",
                             [(user_id, new_path + r[0][len(old):]) for r in renamed])
            sync_subscribed(conn, user_id)
            return sorted((codec.mailbox(r) for r in select_in(conn, "SELECT * FROM mailboxes WHERE id IN ({in})",
                                                                 ids)), key=lambda m: m.path)

        return await self._write(tx)

    async def delete_mailbox(self, mailbox_id: str) -> None:
        """Delete the mailbox, its messages (releasing blobs and storage) and its journal."""
        now = time.time()

        def tx(conn: sqlite3.Connection) -> None:
            mailbox_row(conn, mailbox_id)
            uids = [r[0] for r in conn.execute("SELECT uid FROM messages WHERE mailbox_id = ?", (mailbox_id,))]
            remove_messages(conn, mailbox_id, uids, now, journal=False)
            conn.execute("DELETE FROM journal WHERE mailbox_id = ?", (mailbox_id,))
            conn.execute("DELETE FROM mailboxes WHERE id = ?", (mailbox_id,))

        await self._write(tx)

    async def set_subscribed(self, user_id: str, path: str, subscribed: bool) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            if subscribed:
                changed = conn.execute("INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)",
                                       (user_id, path)).rowcount
            else:
                changed = conn.execute("DELETE FROM subscriptions WHERE user_id = ? AND path = ?",
                                       (user_id, path)).rowcount
            conn.execute("UPDATE mailboxes SET subscribed = ? WHERE user_id = ? AND path = ?",
                         (int(subscribed), user_id, path))
            return bool(changed)

        return await self._write(tx)

    async def list_subscriptions(self, user_id: str) -> list[str]:
        return await self._read(lambda conn: [r[0] for r in conn.execute(
            "SELECT path FROM subscriptions WHERE user_id = ? ORDER BY path", (user_id,))])

    async def mailbox_status(self, mailbox_id: str, *, first_unseen: bool = True) -> MailboxStatus:
        """The mailbox's counters (kept in its row: no message is counted) and its \\Recent messages (an index
        range from the watermark), from one read transaction. ``first_unseen`` scans the messages' flags."""
        def q(conn: sqlite3.Connection) -> MailboxStatus:
            row = mailbox_row(conn, mailbox_id)
            box = codec.mailbox(row)
            recent = 0
            if box.recent_from < box.uid_next:
                recent = conn.execute("SELECT COUNT(*) FROM messages WHERE mailbox_id = ? AND uid >= ?",
                                      (mailbox_id, box.recent_from)).fetchone()[0]
            first: int | None = None
            if first_unseen:
                first = 0
                if row["unseen_count"]:
                    uid = conn.execute(f"SELECT MIN(uid) FROM messages WHERE mailbox_id = ? AND NOT {SEEN_SQL}",
                                       (mailbox_id,)).fetchone()[0]
                    first = 0 if uid is None else conn.execute(
                        "SELECT COUNT(*) FROM messages WHERE mailbox_id = ? AND uid <= ?",
                        (mailbox_id, uid)).fetchone()[0]
            return MailboxStatus(mailbox=box, messages=row["message_count"], unseen=row["unseen_count"],
                                 recent=recent, size=row["total_size"], first_unseen=first)

        return await self._read(q)
