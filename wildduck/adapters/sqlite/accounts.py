"""The ``Accounts`` role on SQLite: users and addresses."""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.queries import placeholders
from wildduck.adapters.sqlite.steps import adjust_refs, insert_mailbox, one
from wildduck.errors import AlreadyExists, InvalidInput
from wildduck.model import AUTHLOG_BUCKET, EVERYTHING, Address, AuthEvent, Listing, MailboxSpec, User


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
        tags: Sequence[str] = (),
    ) -> User:
        """Create a user with its addresses (the first is main) and mailboxes in one transaction."""
        user_id = codec.new_id()
        now = time.time()

        def tx(conn: sqlite3.Connection) -> User:
            if conn.execute("SELECT 1 FROM users WHERE unameview = ?", (unameview,)).fetchone():
                raise AlreadyExists(f"username {username!r} is taken")
            conn.execute(
                "INSERT INTO users (id, username, unameview, name, password_hash, quota, created, tags, tagsview) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (user_id, username, unameview, name, password_hash, quota, now, *tag_columns(tags)),
            )
            for i, (address, addrview) in enumerate(addresses):
                insert_address(conn, user_id, address, addrview, i == 0, now)
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

    async def list_users(self, listing: Listing = EVERYTHING) -> list[User]:
        where, args = _filters(listing, "instr(lower(username), ?) OR id IN (SELECT user_id FROM addresses WHERE "
                                        "main = 1 AND instr(address, ?))", 2)
        return await self._read(lambda conn: [codec.user(r) for r in _page(conn, "users", where, args, listing)])

    async def count_users(self, listing: Listing = EVERYTHING) -> int:
        where, args = _filters(listing, "instr(lower(username), ?) OR id IN (SELECT user_id FROM addresses WHERE "
                                        "main = 1 AND instr(address, ?))", 2)
        return await self._read(lambda conn: _count(conn, "users", where, args))

    async def set_profile(self, user_id: str, *, name: str | None = None, tags: Sequence[str] | None = None) -> None:
        changes = _profile(name, tags)
        if changes:
            await self._update_user(user_id, changes)

    async def recount_storage(self, user_id: str) -> tuple[int, int]:
        def tx(conn: sqlite3.Connection) -> tuple[int, int]:
            before = one(conn, "SELECT storage_used FROM users WHERE id = ?", (user_id,), _no_user(user_id))[0]
            after = conn.execute("UPDATE users SET storage_used = (SELECT COALESCE(SUM(size), 0) FROM messages "
                                 "WHERE user_id = ?1) WHERE id = ?1 RETURNING storage_used", (user_id,)).fetchone()[0]
            return int(before), int(after)

        return await self._write(tx)

    async def _update_user(self, user_id: str, changes: dict[str, Any]) -> None:
        assignments = ", ".join(f"{column} = ?" for column in changes)

        def tx(conn: sqlite3.Connection) -> None:
            one(conn, f"UPDATE users SET {assignments} WHERE id = ? RETURNING id", (*changes.values(), user_id),
                _no_user(user_id))

        await self._write(tx)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._update_user(user_id, {"password_hash": password_hash})

    async def set_quota(self, user_id: str, quota: int | None) -> None:
        await self._update_user(user_id, {"quota": quota})

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._update_user(user_id, {"disabled": int(disabled)})

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

    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False, name: str = "",
                          tags: Sequence[str] = ()) -> Address:
        def tx(conn: sqlite3.Connection) -> Address:
            one(conn, "SELECT 1 FROM users WHERE id = ?", (user_id,), _no_user(user_id))
            if main:
                conn.execute("UPDATE addresses SET main = 0 WHERE user_id = ?", (user_id,))
            return insert_address(conn, user_id, address, addrview, main, time.time(), name, tags)

        return await self._write(tx)

    async def get_address(self, address_id: str) -> Address:
        return await self._read(lambda conn: codec.address(
            one(conn, "SELECT * FROM addresses WHERE id = ?", (address_id,), f"no address {address_id}")))

    async def update_address(self, address_id: str, *, address: tuple[str, str] | None = None,
                             name: str | None = None, main: bool | None = None,
                             tags: Sequence[str] | None = None) -> Address:
        if main is False:
            raise InvalidInput("an address cannot stop being main: make another address main instead", "main")
        changes = _profile(name, tags)
        if address is not None:
            changes.update(address=address[0], addrview=address[1])

        def tx(conn: sqlite3.Connection) -> Address:
            row = one(conn, "SELECT * FROM addresses WHERE id = ?", (address_id,), f"no address {address_id}")
            if address is not None and address[1] != row["addrview"] and conn.execute(
                    "SELECT 1 FROM addresses WHERE addrview = ?", (address[1],)).fetchone():
                raise AlreadyExists(f"address {address[0]} is taken")
            if main:
                conn.execute("UPDATE addresses SET main = (id = ?) WHERE user_id = ?", (address_id, row["user_id"]))
            if changes:
                assignments = ", ".join(f"{column} = ?" for column in changes)
                conn.execute(f"UPDATE addresses SET {assignments} WHERE id = ?", (*changes.values(), address_id))
            return codec.address(conn.execute("SELECT * FROM addresses WHERE id = ?", (address_id,)).fetchone())

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

    async def list_all_addresses(self, listing: Listing = EVERYTHING) -> list[Address]:
        where, args = _filters(listing, "instr(address, ?)", 1)
        return await self._read(lambda conn: [codec.address(r) for r in _page(conn, "addresses", where, args,
                                                                              listing)])

    async def count_addresses(self, listing: Listing = EVERYTHING) -> int:
        where, args = _filters(listing, "instr(address, ?)", 1)
        return await self._read(lambda conn: _count(conn, "addresses", where, args))

    async def record_auth(self, events: Sequence[AuthEvent]) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            for e in events:
                found = conn.execute(
                    "SELECT id FROM authlog WHERE user_id = ? AND key = ? AND created >= ? ORDER BY created DESC "
                    "LIMIT 1", (e.user_id, e.key, (e.created - AUTHLOG_BUCKET).timestamp())).fetchone()
                if found is not None:
                    conn.execute("UPDATE authlog SET events = events + ?, last = max(last, ?) WHERE id = ?",
                                 (e.events, e.last.timestamp(), found[0]))
                elif conn.execute("SELECT 1 FROM users WHERE id = ?", (e.user_id,)).fetchone():
                    conn.execute(
                        "INSERT INTO authlog (id, user_id, key, action, result, protocol, ip, source, created, "
                        "last, events, expires) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (codec.new_id(), e.user_id, e.key, e.action, e.result, e.protocol, e.ip, e.source,
                         e.created.timestamp(), e.last.timestamp(), e.events, e.expires.timestamp()))

        if events:
            await self._write(tx, durable=False)

    async def auth_log(self, user_id: str, listing: Listing = EVERYTHING, *, action: str | None = None,
                       ip: str | None = None) -> list[AuthEvent]:
        where, args = _auth_filters(user_id, action, ip)
        return await self._read(lambda conn: [codec.auth_event(r) for r in _page(
            conn, "authlog", where, args, listing, descending=True)])

    async def count_auth(self, user_id: str, *, action: str | None = None, ip: str | None = None) -> int:
        where, args = _auth_filters(user_id, action, ip)
        return await self._read(lambda conn: _count(conn, "authlog", where, args))

    async def get_auth_event(self, user_id: str, event_id: str) -> AuthEvent:
        return await self._read(lambda conn: codec.auth_event(one(
            conn, "SELECT * FROM authlog WHERE id = ? AND user_id = ?", (event_id, user_id), f"no event {event_id}")))

    async def prune_auth(self, now: dt.datetime) -> int:
        def tx(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM authlog WHERE expires < ?", (now.timestamp(),)).rowcount

        return await self._write(tx, durable=False)

    async def resolve_address(self, addrview: str) -> Address | None:
        def q(conn: sqlite3.Connection) -> Address | None:
            row = conn.execute("SELECT * FROM addresses WHERE addrview = ?", (addrview,)).fetchone()
            return codec.address(row) if row else None

        return await self._read(q)


def insert_address(conn: sqlite3.Connection, user_id: str, address: str, addrview: str, main: bool,
                   now: float, name: str = "", tags: Sequence[str] = (), address_id: str | None = None) -> Address:
    """A new address row (a new id unless ``address_id`` is given); AlreadyExists when ``addrview`` is taken."""
    if conn.execute("SELECT 1 FROM addresses WHERE addrview = ?", (addrview,)).fetchone():
        raise AlreadyExists(f"address {address} is taken")
    return codec.address(conn.execute(
        "INSERT INTO addresses (id, user_id, address, addrview, main, created, name, tags, tagsview) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (address_id or codec.new_id(), user_id, address, addrview, int(main), now, name,
         *tag_columns(tags))).fetchone())


def tag_columns(tags: Sequence[str]) -> tuple[str, str]:
    """(tags, tagsview) as stored: the tags as given, and case-folded for matching."""
    return json.dumps(list(tags)), json.dumps(sorted({t.lower() for t in tags}))


def _profile(name: str | None, tags: Sequence[str] | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name
    if tags is not None:
        changes["tags"], changes["tagsview"] = tag_columns(tags)
    return changes


def _filters(listing: Listing, query_sql: str, query_args: int) -> tuple[list[str], list[Any]]:
    """SQL conditions (and their arguments) of a listing's query and tags."""
    where: list[str] = []
    args: list[Any] = []
    if listing.query:
        where.append(f"({query_sql})")
        args += [listing.query.lower()] * query_args
    if listing.tags:
        where.append(f"EXISTS (SELECT 1 FROM json_each(tagsview) WHERE value IN ({placeholders(len(listing.tags))}))")
        args += listing.tags
    for tag in listing.required_tags:
        where.append("EXISTS (SELECT 1 FROM json_each(tagsview) WHERE value = ?)")
        args.append(tag)
    return where, args


def _auth_filters(user_id: str, action: str | None, ip: str | None) -> tuple[list[str], list[Any]]:
    where, args = ["user_id = ?"], [user_id]
    for column, value in (("action", action), ("ip", ip)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    return where, args


def _count(conn: sqlite3.Connection, table: str, where: list[str], args: list[Any]) -> int:
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    return int(conn.execute(f"SELECT COUNT(*) FROM {table}{clause}", args).fetchone()[0])


def _page(conn: sqlite3.Connection, table: str, where: list[str], args: list[Any], listing: Listing, *,
          descending: bool = False) -> list[sqlite3.Row]:
    """The rows of ``table`` matching ``where`` in listing order (ids ascending, or descending), paged by the
    listing's keyset (``after``: the ones following that id in that order; ``before``: the ones just preceding
    it, still returned in listing order)."""
    where, args = list(where), list(args)
    forward = listing.before is None
    if listing.after is not None:
        where.append("id < ?" if descending else "id > ?")
        args.append(listing.after)
    if listing.before is not None:
        where.append("id > ?" if descending else "id < ?")
        args.append(listing.before)
    ascending = descending != forward  # a previous page is read backwards from its cursor
    clause = f" WHERE {' AND '.join(where)}" if where else ""
    limit = f" LIMIT {int(listing.limit)}" if listing.limit is not None else ""
    rows = conn.execute(f"SELECT * FROM {table}{clause} ORDER BY id {'ASC' if ascending else 'DESC'}{limit}",
                        args).fetchall()
    return rows if forward else rows[::-1]
