"""The ``Accounts`` role on SQLite: users and addresses."""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.steps import adjust_refs, insert_mailbox, one
from wildduck.errors import AlreadyExists, InvalidInput
from wildduck.model import Address, MailboxSpec, User


def _no_user(user_id: str) -> str:
    return f"no user {user_id}"


class AccountsRole(StoreBase):
    """``Accounts``: users and addresses (unique ``unameview`` and ``addrview``)."""

    async def create_user(
        self,
        *,
        username: str,
        unameview: str,
        password_hash: str,
        quota: int | None,
        addresses: Sequence[tuple[str, str]],
        mailboxes: Sequence[MailboxSpec],
        name: str = "",
    ) -> User:
        """Create a user with its addresses (the first is main) and mailboxes in one transaction."""
        user_id = codec.new_id()
        now = time.time()

        def tx(conn: sqlite3.Connection) -> User:
            if conn.execute("SELECT 1 FROM users WHERE unameview = ?", (unameview,)).fetchone():
                raise AlreadyExists(f"username {username!r} is taken")
            conn.execute(
                "INSERT INTO users (id, username, unameview, name, password_hash, quota, created) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (user_id, username, unameview, name, password_hash, quota, now),
            )
            for i, (address, addrview) in enumerate(addresses):
                _insert_address(conn, user_id, address, addrview, i == 0, now)
            for spec in mailboxes:
                insert_mailbox(conn, codec.new_id(), user_id, spec, now)
            return codec.user(conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())

        return await self._write(tx)

    async def get_user(self, user_id: str) -> User:
        return await self._read(
            lambda conn: codec.user(one(conn, "SELECT * FROM users WHERE id = ?", (user_id,), _no_user(user_id))))

    async def find_user(self, unameview: str) -> User | None:
        def q(conn: sqlite3.Connection) -> User | None:
            row = conn.execute("SELECT * FROM users WHERE unameview = ?", (unameview,)).fetchone()
            return codec.user(row) if row else None

        return await self._read(q)

    async def list_users(self) -> list[User]:
        return await self._read(
            lambda conn: [codec.user(r) for r in conn.execute("SELECT * FROM users ORDER BY unameview")]
        )

    async def _update_user(self, user_id: str, column: str, value: Any) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            one(conn, f"UPDATE users SET {column} = ? WHERE id = ? RETURNING id", (value, user_id), _no_user(user_id))

        await self._write(tx)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._update_user(user_id, "password_hash", password_hash)

    async def set_quota(self, user_id: str, quota: int | None) -> None:
        await self._update_user(user_id, "quota", quota)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._update_user(user_id, "disabled", int(disabled))

    async def delete_user(self, user_id: str) -> None:
        """Delete the user with its addresses, mailboxes, messages and journal; release its blob references."""
        now = time.time()

        def tx(conn: sqlite3.Connection) -> None:
            one(conn, "SELECT 1 FROM users WHERE id = ?", (user_id,), _no_user(user_id))
            released = Counter({row[0]: row[1] for row in conn.execute(
                "SELECT mb.blob, COUNT(*) FROM message_blobs mb JOIN messages m ON m.id = mb.message_id "
                "WHERE m.user_id = ? GROUP BY mb.blob", (user_id,))})
            adjust_refs(conn, {blob: -n for blob, n in released.items()}, now)
            conn.execute(
                "DELETE FROM journal WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)", (user_id,)
            )
            conn.execute("DELETE FROM messages WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))

        await self._write(tx)

    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False) -> Address:
        def tx(conn: sqlite3.Connection) -> Address:
            one(conn, "SELECT 1 FROM users WHERE id = ?", (user_id,), _no_user(user_id))
            if main:
                conn.execute("UPDATE addresses SET main = 0 WHERE user_id = ?", (user_id,))
            return _insert_address(conn, user_id, address, addrview, main, time.time())

        return await self._write(tx)

    async def remove_address(self, addrview: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            row = one(conn, "SELECT main FROM addresses WHERE addrview = ?", (addrview,), f"no address {addrview}")
            if row["main"]:
                raise InvalidInput(f"{addrview} is the main address of its user and cannot be removed", "address")
            conn.execute("DELETE FROM addresses WHERE addrview = ?", (addrview,))

        await self._write(tx)

    async def list_addresses(self, user_id: str) -> list[Address]:
        return await self._read(lambda conn: [
            codec.address(r) for r in conn.execute(
                "SELECT * FROM addresses WHERE user_id = ? ORDER BY main DESC, created, addrview", (user_id,))
        ])

    async def resolve_address(self, addrview: str) -> Address | None:
        def q(conn: sqlite3.Connection) -> Address | None:
            row = conn.execute("SELECT * FROM addresses WHERE addrview = ?", (addrview,)).fetchone()
            return codec.address(row) if row else None

        return await self._read(q)


def _insert_address(conn: sqlite3.Connection, user_id: str, address: str, addrview: str, main: bool,
                    now: float) -> Address:
    if conn.execute("SELECT 1 FROM addresses WHERE addrview = ?", (addrview,)).fetchone():
        raise AlreadyExists(f"address {address} is taken")
    return codec.address(conn.execute(
        "INSERT INTO addresses (id, user_id, address, addrview, main, created) VALUES (?, ?, ?, ?, ?, ?) RETURNING *",
        (codec.new_id(), user_id, address, addrview, int(main), now)).fetchone())
