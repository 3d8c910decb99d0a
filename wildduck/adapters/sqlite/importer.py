"""The ``Importer`` role on SQLite (``wildduck migrate``): users, mailboxes and messages as the source store has
them, each call one transaction (so an interrupted import leaves whole calls, and a call again skips what is there).

An imported mailbox's row holds the source's UIDNEXT and HIGHESTMODSEQ, and ``pruned_modseq`` = HIGHESTMODSEQ: its
journal is empty, and a reader behind that MODSEQ is told it was pruned (``journal.py``)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.accounts import insert_address, tag_columns
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.mailboxes import mailbox_row
from wildduck.adapters.sqlite.messages import _INSERT_MESSAGE, MessagesRole, _Encoded, insert_text, message_row
from wildduck.adapters.sqlite.steps import add_storage, count_messages, one
from wildduck.adapters.sqlite.threading import assign_thread
from wildduck.errors import AlreadyExists, InvalidInput
from wildduck.model import Address, Mailbox, User
from wildduck.ports.importer import ImportedMessage

if TYPE_CHECKING:
    from wildduck.ports.importer import Importer


class ImporterRole(StoreBase):
    """``Importer``: ids, UIDs and MODSEQs kept as given."""

    async def import_user(self, user: User, addresses: Sequence[Address], subscriptions: Sequence[str]) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM users WHERE id = ?", (user.id,)).fetchone():
                return False
            if conn.execute("SELECT 1 FROM users WHERE unameview = ?", (user.unameview,)).fetchone():
                raise AlreadyExists(f"username {user.username!r} is taken by another user")
            conn.execute(
                "INSERT INTO users (id, username, unameview, name, password_hash, quota, disabled, created, tags, "
                "tagsview) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user.id, user.username, user.unameview, user.name, user.password_hash, user.quota,
                 int(user.disabled), codec.ts(user.created), *tag_columns(user.tags)))
            for a in addresses:
                insert_address(conn, user.id, a.address, a.addrview, a.main, codec.ts(a.created), a.name, a.tags,
                               address_id=a.id)
            conn.executemany("INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)",
                             [(user.id, path) for path in subscriptions])
            return True

        return await self._write(tx)

    async def import_mailbox(self, mailbox: Mailbox) -> bool:
        def tx(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (mailbox.id,)).fetchone():
                return False
            one(conn, "SELECT 1 FROM users WHERE id = ?", (mailbox.user_id,), f"no user {mailbox.user_id}")
            if conn.execute("SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?",
                            (mailbox.user_id, mailbox.path)).fetchone():
                raise AlreadyExists(f"mailbox {mailbox.path!r} exists")
            conn.execute(
                "INSERT INTO mailboxes (id, user_id, path, special_use, uid_validity, uid_next, highest_modseq, "
                "subscribed, recent_from, pruned_modseq) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (mailbox.id, mailbox.user_id, mailbox.path, mailbox.special_use, mailbox.uid_validity,
                 mailbox.uid_next, mailbox.highest_modseq, int(mailbox.subscribed), mailbox.recent_from,
                 mailbox.highest_modseq))
            # the user's later mailboxes get UIDVALIDITY values above this one (``steps.next_uid_validity``)
            conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET "
                         "value = max(value, excluded.value)", (f"uidvalidity:{mailbox.user_id}", mailbox.uid_validity))
            return True

        return await self._write(tx)

    async def import_messages(self, mailbox_id: str, messages: Sequence[ImportedMessage]) -> None:
        now = time.time()
        encoded = {id(m.prepared): _Encoded.of(m.prepared) for m in messages}

        def tx(conn: sqlite3.Connection) -> None:
            box = mailbox_row(conn, mailbox_id)
            for m in messages:
                if not 0 < m.uid < box["uid_next"] or not 0 < m.modseq <= box["highest_modseq"]:
                    raise InvalidInput(f"message UID {m.uid} MODSEQ {m.modseq} does not fit mailbox {mailbox_id} "
                                       f"(UIDNEXT {box['uid_next']}, HIGHESTMODSEQ {box['highest_modseq']})", "uid")
            user_id = box["user_id"]
            MessagesRole._store_blobs(conn, [m.prepared for m in messages], encoded, now)
            rows = []
            for m in messages:
                p, e = m.prepared, encoded[id(m.prepared)]
                assign_thread(conn, user_id, p.message_id, p.references, p.base_subject, now, m.thread_id)
                rows.append(message_row(m.id, user_id, mailbox_id, m.uid, m.modseq, codec.flags_json(m.flags),
                                        m.internal_date, p, e, insert_text(conn, p), m.email_id, m.thread_id,
                                        codec.ts(m.saved)))
            conn.executemany(_INSERT_MESSAGE, rows)
            conn.executemany("INSERT INTO message_blobs (message_id, blob) VALUES (?, ?)",
                             [(m.id, blob) for m in messages for blob in encoded[id(m.prepared)].blobs])
            count_messages(conn, mailbox_id, len(messages), sum("\\Seen" not in m.flags for m in messages),
                           sum(m.prepared.size for m in messages))
            add_storage(conn, user_id, sum(m.prepared.size for m in messages), None)

        if messages:
            await self._write(tx)


if TYPE_CHECKING:
    def _fills_the_role(s: ImporterRole) -> Importer:
        """mypy checks here that ``ImporterRole`` implements the port."""
        return s
