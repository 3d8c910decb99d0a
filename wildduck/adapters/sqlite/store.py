"""The embedded store: every storage role in one SQLite database (WAL, one writer, a pool of readers).

Each port method is one thread hop and one transaction. A message, its blobs and the references it takes on them
are committed together, so a crash never leaves a half-stored message, an orphaned reference or a missing blob.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import queue
import secrets
import sqlite3
import struct
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from wildduck.adapters._threads import WorkerThreads
from wildduck.adapters.sqlite.schema import migrate
from wildduck.adapters.sqlite.writer import GroupCommitWriter
from wildduck.domain.models import (
    Address,
    AppendResult,
    BlobStats,
    FlagChange,
    JournalEntry,
    Mailbox,
    MailboxCounts,
    MailboxSnapshot,
    MailboxSpec,
    MessageFlags,
    MessageRecord,
    MessageSummary,
    NewMessage,
    PreparedMessage,
    SearchRow,
    StoredPart,
    User,
)
from wildduck.errors import AlreadyExists, DomainError, InvalidInput, NotFound, QuotaExceeded, StoreError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: compress only when it saves at least this fraction
_MIN_SAVING = 0.05
_BUSY_TIMEOUT_MS = 30_000


def new_id() -> str:
    """24 hex digits: 4 bytes of seconds since the epoch, 8 random bytes (sortable by creation, like ObjectIds)."""
    return struct.pack(">I", int(time.time()) & 0xFFFFFFFF).hex() + secrets.token_hex(8)


def _ts(value: dt.datetime) -> float:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def _dt(value: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(value, dt.UTC)


def _pack(data: bytes) -> tuple[bytes, bool]:
    """(stored bytes, compressed?) — zlib when it saves space."""
    if len(data) < 64:
        return data, False
    packed = zlib.compress(data, 6)
    if len(packed) <= len(data) * (1 - _MIN_SAVING):
        return packed, True
    return data, False


def _unpack(data: bytes, compressed: int) -> bytes:
    return zlib.decompress(data) if compressed else bytes(data)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _parts_json(parts: Sequence[StoredPart]) -> str:
    return _json([[p.offset, p.length, p.blob, p.encoding] for p in parts])


def _parts_load(text: str) -> list[StoredPart]:
    return [StoredPart(offset=o, length=n, blob=b, encoding=e) for o, n, b, e in json.loads(text)]


def _user(row: sqlite3.Row) -> User:
    return User(
        id=row["id"], username=row["username"], unameview=row["unameview"], password_hash=row["password_hash"],
        quota=row["quota"], storage_used=row["storage_used"], created=_dt(row["created"]),
        disabled=bool(row["disabled"]), name=row["name"],
    )


def _address(row: sqlite3.Row) -> Address:
    return Address(id=row["id"], user_id=row["user_id"], address=row["address"], addrview=row["addrview"],
                   main=bool(row["main"]), created=_dt(row["created"]))


def _mailbox(row: sqlite3.Row) -> Mailbox:
    return Mailbox(
        id=row["id"], user_id=row["user_id"], path=row["path"], special_use=row["special_use"],
        uid_validity=row["uid_validity"], uid_next=row["uid_next"], highest_modseq=row["highest_modseq"],
        subscribed=bool(row["subscribed"]),
    )


def _flags(text: str) -> tuple[str, ...]:
    return tuple(json.loads(text))


def _insert_mailbox(conn: sqlite3.Connection, mid: str, user_id: str, spec: MailboxSpec, now: float) -> None:
    """A new mailbox row; it is subscribed if its name is (an earlier subscription) or ``spec`` asks for it."""
    if spec.subscribed:
        conn.execute("INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)", (user_id, spec.path))
    conn.execute(
        "INSERT INTO mailboxes (id, user_id, path, special_use, uid_validity, highest_modseq, subscribed) "
        "VALUES (?, ?, ?, ?, ?, 1, EXISTS (SELECT 1 FROM subscriptions WHERE user_id = ? AND path = ?))",
        (mid, user_id, spec.path, spec.special_use, _next_uid_validity(conn, user_id, now), user_id, spec.path))


def _sync_subscribed(conn: sqlite3.Connection, user_id: str) -> None:
    conn.execute("UPDATE mailboxes SET subscribed = EXISTS (SELECT 1 FROM subscriptions s WHERE s.user_id = "
                 "mailboxes.user_id AND s.path = mailboxes.path) WHERE user_id = ?", (user_id,))


def stored_header(skeleton: bytes, compressed: int, mime_tree: str) -> bytes:
    """The top-level header block of a stored message (from its skeleton and MIME tree columns)."""
    raw = _unpack(skeleton, compressed)
    tree = json.loads(mime_tree)
    return raw[: int(tree.get("bs", len(raw)))] if isinstance(tree, dict) else b""


_RECORD_META = ("id, user_id, mailbox_id, uid, modseq, flags, internal_date, size, envelope, bodystructure, subject, "
                "message_id, header_date")


def _record(r: sqlite3.Row, content: bool = True) -> MessageRecord:
    return MessageRecord(
        id=r["id"], user_id=r["user_id"], mailbox_id=r["mailbox_id"], uid=r["uid"], modseq=r["modseq"],
        flags=_flags(r["flags"]), internal_date=_dt(r["internal_date"]), size=r["size"],
        skeleton=_unpack(r["skeleton"], r["skeleton_compressed"]) if content else b"",
        parts=_parts_load(r["parts"]) if content else [],
        mime_tree=json.loads(r["mime_tree"]) if content else {}, envelope=json.loads(r["envelope"]),
        bodystructure=json.loads(r["bodystructure"]), subject=r["subject"], message_id=r["message_id"],
        header_date=_dt(r["header_date"]) if r["header_date"] is not None else None,
    )


def _next_uid_validity(conn: sqlite3.Connection, user_id: str, now: float) -> int:
    """A UIDVALIDITY for a new mailbox of the user: the creation time, but always above every earlier one, so a
    mailbox deleted and created again within a second still gets a new value (RFC 3501 2.3.1.1)."""
    name = f"uidvalidity:{user_id}"
    row = conn.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    value = max(int(now), row[0] + 1 if row else 1) & 0xFFFFFFFF or 1
    conn.execute("INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = ?",
                 (name, value, value))
    return value


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


class SqliteStore:
    """``MailStore`` and ``BlobStore`` on one SQLite database file."""

    def __init__(self, path: Path, *, default_quota: int, synchronous: str, readers: int) -> None:
        if synchronous not in ("full", "normal"):
            raise ValueError(f"synchronous must be 'full' or 'normal', not {synchronous!r}")
        self.path = path
        self.default_quota = default_quota
        self.synchronous = synchronous
        self._group_writer = GroupCommitWriter(lambda: self._writer, self._mapped)
        self._reader_threads = WorkerThreads(max(1, readers), "wildduck-sqlite-reader")
        self._writer: sqlite3.Connection | None = None
        self._readers: queue.SimpleQueue[sqlite3.Connection] = queue.SimpleQueue()
        self._all: list[sqlite3.Connection] = []
        self._reader_count = max(1, readers)

    # connections -------------------------------------------------------------------------------------------
    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                               timeout=_BUSY_TIMEOUT_MS / 1000)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {self.synchronous.upper()}")
        conn.execute("PRAGMA foreign_keys = ON")
        self._all.append(conn)
        return conn

    def _open_sync(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = self._connect()
        migrate(self._writer)
        for _ in range(self._reader_count):
            self._readers.put(self._connect())

    async def open(self) -> None:
        try:
            await self._group_writer.call(self._open_sync)
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open {self.path}: {exc}") from exc

    async def close(self) -> None:
        """Close every connection (after the running calls finish)."""
        def close_all() -> None:
            for conn in self._all:
                conn.close()
            self._all.clear()

        await self._group_writer.call(close_all)
        await self._group_writer.stop()
        self._reader_threads.stop()

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a write transaction on the writer connection; returns once it is committed (possibly
        together with other writers' transactions: see ``writer.py``).

        Cancellation: the transaction runs to its end (commit or rollback) on the writer thread.
        """
        return await self._group_writer.transaction(fn)

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` on a reader connection inside one read transaction (a consistent snapshot)."""
        def tx() -> T:
            conn = self._readers.get()
            try:
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    conn.execute("COMMIT")
            finally:
                self._readers.put(conn)

        return await self._reader_threads.run(self._mapped, tx)

    @staticmethod
    def _mapped(fn: Callable[[], T]) -> T:
        try:
            return fn()
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise AlreadyExists(str(exc)) from exc
            raise StoreError(f"integrity error: {exc}") from exc
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite: {exc}") from exc

    # users -------------------------------------------------------------------------------------------------
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
        user_id = new_id()
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
                if conn.execute("SELECT 1 FROM addresses WHERE addrview = ?", (addrview,)).fetchone():
                    raise AlreadyExists(f"address {address} is taken")
                conn.execute(
                    "INSERT INTO addresses (id, user_id, address, addrview, main, created) VALUES (?, ?, ?, ?, ?, ?)",
                    (new_id(), user_id, address, addrview, int(i == 0), now),
                )
            for spec in mailboxes:
                _insert_mailbox(conn, new_id(), user_id, spec, now)
            return _user(conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone())

        return await self._write(tx)

    async def get_user(self, user_id: str) -> User:
        def q(conn: sqlite3.Connection) -> User:
            row = conn.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()
            if row is None:
                raise NotFound(f"no user {user_id}")
            return _user(row)

        return await self._read(q)

    async def find_user(self, unameview: str) -> User | None:
        def q(conn: sqlite3.Connection) -> User | None:
            row = conn.execute("SELECT * FROM users WHERE unameview = ?", (unameview,)).fetchone()
            return _user(row) if row else None

        return await self._read(q)

    async def list_users(self) -> list[User]:
        return await self._read(
            lambda conn: [_user(r) for r in conn.execute("SELECT * FROM users ORDER BY unameview")]
        )

    async def _update_user(self, user_id: str, sql: str, args: tuple[Any, ...]) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            if conn.execute(sql, (*args, user_id)).rowcount == 0:
                raise NotFound(f"no user {user_id}")

        await self._write(tx)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._update_user(user_id, "UPDATE users SET password_hash = ? WHERE id = ?", (password_hash,))

    async def set_quota(self, user_id: str, quota: int | None) -> None:
        await self._update_user(user_id, "UPDATE users SET quota = ? WHERE id = ?", (quota,))

    async def delete_user(self, user_id: str) -> None:
        now = time.time()

        def tx(conn: sqlite3.Connection) -> None:
            if not conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone():
                raise NotFound(f"no user {user_id}")
            released = conn.execute(
                "SELECT mb.blob, COUNT(*) FROM message_blobs mb JOIN messages m ON m.id = mb.message_id "
                "WHERE m.user_id = ? GROUP BY mb.blob", (user_id,),
            ).fetchall()
            self._release(conn, {row[0]: row[1] for row in released}, now)
            conn.execute(
                "DELETE FROM journal WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE user_id = ?)", (user_id,)
            )
            conn.execute("DELETE FROM messages WHERE user_id = ?", (user_id,))
            conn.execute("DELETE FROM users WHERE id = ?", (user_id,))

        await self._write(tx)

    # addresses ---------------------------------------------------------------------------------------------
    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False) -> Address:
        def tx(conn: sqlite3.Connection) -> Address:
            if not conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone():
                raise NotFound(f"no user {user_id}")
            if conn.execute("SELECT 1 FROM addresses WHERE addrview = ?", (addrview,)).fetchone():
                raise AlreadyExists(f"address {address} is taken")
            if main:
                conn.execute("UPDATE addresses SET main = 0 WHERE user_id = ?", (user_id,))
            aid = new_id()
            conn.execute(
                "INSERT INTO addresses (id, user_id, address, addrview, main, created) VALUES (?, ?, ?, ?, ?, ?)",
                (aid, user_id, address, addrview, int(main), time.time()),
            )
            return _address(conn.execute("SELECT * FROM addresses WHERE id = ?", (aid,)).fetchone())

        return await self._write(tx)

    async def remove_address(self, addrview: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT main FROM addresses WHERE addrview = ?", (addrview,)).fetchone()
            if row is None:
                raise NotFound(f"no address {addrview}")
            if row["main"]:
                raise InvalidInput(f"{addrview} is the main address of its user and cannot be removed", "address")
            conn.execute("DELETE FROM addresses WHERE addrview = ?", (addrview,))

        await self._write(tx)

    async def list_addresses(self, user_id: str) -> list[Address]:
        return await self._read(lambda conn: [
            _address(r) for r in conn.execute(
                "SELECT * FROM addresses WHERE user_id = ? ORDER BY main DESC, created, addrview", (user_id,))
        ])

    async def resolve_address(self, addrview: str) -> Address | None:
        def q(conn: sqlite3.Connection) -> Address | None:
            row = conn.execute("SELECT * FROM addresses WHERE addrview = ?", (addrview,)).fetchone()
            return _address(row) if row else None

        return await self._read(q)

    # mailboxes ---------------------------------------------------------------------------------------------
    async def list_mailboxes(self, user_id: str) -> list[Mailbox]:
        return await self._read(lambda conn: [
            _mailbox(r) for r in conn.execute(
                "SELECT * FROM mailboxes WHERE user_id = ? ORDER BY path = 'INBOX' DESC, path", (user_id,))
        ])

    async def get_mailbox(self, mailbox_id: str) -> Mailbox:
        def q(conn: sqlite3.Connection) -> Mailbox:
            row = conn.execute("SELECT * FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            return _mailbox(row)

        return await self._read(q)

    async def find_mailbox(self, user_id: str, path: str) -> Mailbox | None:
        def q(conn: sqlite3.Connection) -> Mailbox | None:
            row = conn.execute("SELECT * FROM mailboxes WHERE user_id = ? AND path = ?", (user_id, path)).fetchone()
            return _mailbox(row) if row else None

        return await self._read(q)

    async def create_mailbox(self, user_id: str, spec: MailboxSpec) -> Mailbox:
        def tx(conn: sqlite3.Connection) -> Mailbox:
            if not conn.execute("SELECT 1 FROM users WHERE id = ?", (user_id,)).fetchone():
                raise NotFound(f"no user {user_id}")
            if conn.execute("SELECT 1 FROM mailboxes WHERE user_id = ? AND path = ?", (user_id, spec.path)).fetchone():
                raise AlreadyExists(f"mailbox {spec.path!r} exists")
            mid = new_id()
            _insert_mailbox(conn, mid, user_id, spec, time.time())
            return _mailbox(conn.execute("SELECT * FROM mailboxes WHERE id = ?", (mid,)).fetchone())

        return await self._write(tx)

    async def rename_mailbox(self, mailbox_id: str, new_path: str) -> None:
        def tx(conn: sqlite3.Connection) -> None:
            row = conn.execute("SELECT user_id, path FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            old = row["path"]
            children = conn.execute(
                "SELECT id, path FROM mailboxes WHERE user_id = ? AND substr(path, 1, ?) = ?",
                (row["user_id"], len(old) + 1, old + "/")).fetchall()
            moves = [(mailbox_id, new_path)] + [(c["id"], new_path + c["path"][len(old):]) for c in children]
            for _mid, path in moves:
                clash = conn.execute("SELECT id FROM mailboxes WHERE user_id = ? AND path = ?",
                                     (row["user_id"], path)).fetchone()
                if clash is not None and clash["id"] not in {m for m, _ in moves}:
                    raise AlreadyExists(f"mailbox {path!r} exists")
            # two steps, so that swapping names inside the renamed subtree never hits the unique index
            conn.executemany("UPDATE mailboxes SET path = ? WHERE id = ?",
                             [("\x00renaming/" + mid, mid) for mid, _ in moves])
            conn.executemany("UPDATE mailboxes SET path = ? WHERE id = ?", [(path, mid) for mid, path in moves])
            # subscriptions move with the names (a subscription already held by a new name stays as it is)
            user_id = row["user_id"]
            renamed = conn.execute(
                "DELETE FROM subscriptions WHERE user_id = ? AND (path = ? OR substr(path, 1, ?) = ?) RETURNING path",
                (user_id, old, len(old) + 1, old + "/")).fetchall()
            conn.executemany("INSERT OR IGNORE INTO subscriptions (user_id, path) VALUES (?, ?)",
                             [(user_id, new_path + r[0][len(old):]) for r in renamed])
            _sync_subscribed(conn, user_id)

        await self._write(tx)

    async def delete_mailbox(self, mailbox_id: str) -> None:
        now = time.time()

        def tx(conn: sqlite3.Connection) -> None:
            if not conn.execute("SELECT 1 FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone():
                raise NotFound(f"no mailbox {mailbox_id}")
            uids = [r[0] for r in conn.execute("SELECT uid FROM messages WHERE mailbox_id = ?", (mailbox_id,))]
            self._expunge_tx(conn, mailbox_id, uids, now)
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

    async def mailbox_counts(self, mailbox_id: str) -> MailboxCounts:
        def q(conn: sqlite3.Connection) -> MailboxCounts:
            total = unseen = size = 0
            first_unseen = 0
            for seq, r in enumerate(conn.execute(
                    "SELECT flags, size FROM messages WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,)), start=1):
                total += 1
                size += r[1]
                if "\\Seen" not in _flags(r[0]):
                    unseen += 1
                    first_unseen = first_unseen or seq
            return MailboxCounts(total, unseen, size, first_unseen)

        return await self._read(q)

    # messages ----------------------------------------------------------------------------------------------
    async def append_messages(self, items: Sequence[NewMessage]) -> list[AppendResult | DomainError]:
        now = time.time()
        # serialize each distinct prepared message once (N recipients share one object), outside the write lock
        encoded: dict[int, tuple[bytes, bool, str, str, str, str, list[str]]] = {}
        for item in items:
            p = item.prepared
            if id(p) not in encoded:
                skeleton, compressed = _pack(p.skeleton)
                blobs_used = sorted({part.blob for part in p.parts})
                missing = [b for b in blobs_used if b not in p.blobs]
                if missing:
                    raise ValueError(f"prepared message lacks the bytes of blob {missing[0]}")
                encoded[id(p)] = (skeleton, compressed, _parts_json(p.parts), _json(p.mime_tree),
                                  _json(p.envelope), _json(p.bodystructure), blobs_used)

        def tx(conn: sqlite3.Connection) -> list[AppendResult | DomainError]:
            outcomes: list[AppendResult | DomainError | None] = [None] * len(items)
            used: dict[str, tuple[int, int]] = {}  # user -> (storage_used, quota)
            by_mailbox: dict[str, list[int]] = defaultdict(list)
            mailbox_info: dict[str, sqlite3.Row] = {}
            text_ids: dict[int, int | None] = {}
            for idx, item in enumerate(items):
                if item.mailbox_id not in mailbox_info:
                    row = conn.execute("SELECT id, user_id FROM mailboxes WHERE id = ?",
                                       (item.mailbox_id,)).fetchone()
                    if row is None or row["user_id"] != item.user_id:
                        outcomes[idx] = NotFound(f"no mailbox {item.mailbox_id} for user {item.user_id}")
                        continue
                    mailbox_info[item.mailbox_id] = row
                if item.user_id not in used:
                    row = conn.execute("SELECT storage_used, quota FROM users WHERE id = ?",
                                       (item.user_id,)).fetchone()
                    quota = row["quota"] if row["quota"] is not None else self.default_quota
                    used[item.user_id] = (row["storage_used"], quota)
                storage, quota = used[item.user_id]
                if storage + item.prepared.size > quota:
                    outcomes[idx] = QuotaExceeded(f"user {item.user_id} is over quota")
                    continue
                used[item.user_id] = (storage + item.prepared.size, quota)
                by_mailbox[item.mailbox_id].append(idx)

            # blobs: store the missing ones, one reference per stored message
            refs: Counter[str] = Counter()
            for indexes in by_mailbox.values():
                for idx in indexes:
                    refs.update(encoded[id(items[idx].prepared)][6])
            if refs:
                present = {
                    row[0] for row in conn.execute(
                        f"SELECT hash FROM blobs WHERE hash IN ({_placeholders(len(refs))})", list(refs))
                }
                sources = {h: data for item in items for h, data in item.prepared.blobs.items()}
                for blob in refs:
                    if blob not in present:
                        raw = sources[blob]
                        data, compressed = _pack(raw)
                        conn.execute(
                            "INSERT INTO blobs (hash, data, compressed, raw_size, stored_size, refcount, changed) "
                            "VALUES (?, ?, ?, ?, ?, 0, ?)",
                            (blob, data, int(compressed), len(raw), len(data), now),
                        )
                conn.executemany("UPDATE blobs SET refcount = refcount + ?, changed = ? WHERE hash = ?",
                                 [(n, now, blob) for blob, n in refs.items()])

            for mailbox_id, indexes in by_mailbox.items():
                n = len(indexes)
                row = conn.execute(
                    "UPDATE mailboxes SET uid_next = uid_next + ?, highest_modseq = highest_modseq + ? "
                    "WHERE id = ? RETURNING uid_next - ?, highest_modseq - ?, uid_validity",
                    (n, n, mailbox_id, n, n),
                ).fetchone()
                first_uid, base_modseq, uid_validity = row[0], row[1], row[2]
                message_rows: list[tuple[Any, ...]] = []
                blob_rows: list[tuple[str, str]] = []
                journal_rows = []
                for k, idx in enumerate(indexes):
                    item = items[idx]
                    p = item.prepared
                    skeleton, compressed, parts, tree, envelope, bodystructure, blobs_used = encoded[id(p)]
                    if id(p) not in text_ids:  # one index row per prepared message, shared by its recipients
                        text_ids[id(p)] = conn.execute("INSERT INTO message_text (body, head) VALUES (?, ?)",
                                                       (p.text.casefold(), p.header_text.casefold())).lastrowid
                    mid = new_id()
                    uid, modseq = first_uid + k, base_modseq + k + 1
                    flags = _json(list(dict.fromkeys(item.flags)))
                    message_rows.append((
                        mid, item.user_id, mailbox_id, uid, modseq, flags, _ts(item.internal_date), p.size,
                        skeleton, int(compressed), parts, tree, envelope, bodystructure, p.subject, p.message_id,
                        _ts(p.header_date) if p.header_date else None, int(p.has_attachments), "", text_ids[id(p)],
                    ))
                    blob_rows.extend((mid, blob) for blob in blobs_used)
                    journal_rows.append((mailbox_id, modseq, "EXISTS", uid, mid, flags, now))
                    outcomes[idx] = AppendResult(mid, mailbox_id, uid, modseq, uid_validity)
                conn.executemany(
                    "INSERT INTO messages (id, user_id, mailbox_id, uid, modseq, flags, internal_date, size, "
                    "skeleton, skeleton_compressed, parts, mime_tree, envelope, bodystructure, subject, message_id, "
                    "header_date, has_attachments, search_text, text_id) "
                    f"VALUES ({_placeholders(20)})",
                    message_rows,
                )
                conn.executemany("INSERT INTO message_blobs (message_id, blob) VALUES (?, ?)", blob_rows)
                conn.executemany(
                    "INSERT INTO journal (mailbox_id, modseq, command, uid, message_id, flags, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)", journal_rows,
                )
            for user_id, (storage, _quota) in used.items():
                conn.execute("UPDATE users SET storage_used = ? WHERE id = ?", (storage, user_id))
            done = [o for o in outcomes if o is not None]
            assert len(done) == len(items), "every item gets an outcome"
            return done

        return await self._write(tx)

    async def get_message(self, mailbox_id: str, uid: int) -> MessageRecord:
        def q(conn: sqlite3.Connection) -> MessageRecord:
            r = conn.execute("SELECT * FROM messages WHERE mailbox_id = ? AND uid = ?", (mailbox_id, uid)).fetchone()
            if r is None:
                raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
            return _record(r)

        return await self._read(q)

    async def list_messages(self, mailbox_id: str) -> list[MessageSummary]:
        return await self._read(lambda conn: [
            MessageSummary(id=r["id"], uid=r["uid"], modseq=r["modseq"], flags=_flags(r["flags"]),
                           internal_date=_dt(r["internal_date"]), size=r["size"], subject=r["subject"])
            for r in conn.execute(
                "SELECT id, uid, modseq, flags, internal_date, size, subject FROM messages "
                "WHERE mailbox_id = ? ORDER BY uid", (mailbox_id,))
        ])

    @staticmethod
    def _release(conn: sqlite3.Connection, counts: dict[str, int], now: float) -> None:
        conn.executemany("UPDATE blobs SET refcount = refcount - ?, changed = ? WHERE hash = ?",
                         [(n, now, blob) for blob, n in counts.items()])

    def _expunge_tx(self, conn: sqlite3.Connection, mailbox_id: str, uids: Sequence[int], now: float, *,
                    release: bool = True) -> list[int]:
        """Delete messages in the current transaction: journal EXPUNGE entries with new MODSEQs; with
        ``release`` their blob references and storage are given back (a MOVE keeps both)."""
        wanted = sorted(set(uids))
        if not wanted:
            return []
        rows = []
        for start in range(0, len(wanted), 500):
            chunk = wanted[start:start + 500]
            rows.extend(conn.execute(
                f"SELECT id, uid, size, user_id FROM messages WHERE mailbox_id = ? "
                f"AND uid IN ({_placeholders(len(chunk))})", (mailbox_id, *chunk)).fetchall())
        if not rows:
            return []
        rows.sort(key=lambda r: r["uid"])
        ids = [r["id"] for r in rows]
        if release:
            counts: Counter[str] = Counter()
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                counts.update(row[0] for row in conn.execute(
                    f"SELECT blob FROM message_blobs WHERE message_id IN ({_placeholders(len(chunk))})", chunk))
            self._release(conn, dict(counts), now)
            freed: Counter[str] = Counter()
            for r in rows:
                freed[r["user_id"]] += r["size"]
            conn.executemany("UPDATE users SET storage_used = MAX(0, storage_used - ?) WHERE id = ?",
                             [(size, user) for user, size in freed.items()])
        base = self._bump_modseq(conn, mailbox_id, len(rows))
        conn.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in ids])
        conn.executemany(
            "INSERT INTO journal (mailbox_id, modseq, command, uid, message_id, flags, created) "
            "VALUES (?, ?, 'EXPUNGE', ?, ?, NULL, ?)",
            [(mailbox_id, base + k + 1, r["uid"], r["id"], now) for k, r in enumerate(rows)],
        )
        return [r["uid"] for r in rows]

    @staticmethod
    def _bump_modseq(conn: sqlite3.Connection, mailbox_id: str, n: int) -> int:
        """Reserve ``n`` MODSEQs; returns the value before (the first reserved one is that + 1)."""
        row = conn.execute(
            "UPDATE mailboxes SET highest_modseq = highest_modseq + ? WHERE id = ? RETURNING highest_modseq - ?",
            (n, mailbox_id, n)).fetchone()
        if row is None:
            raise NotFound(f"no mailbox {mailbox_id}")
        return int(row[0])

    async def expunge(self, mailbox_id: str, uids: Sequence[int]) -> list[int]:
        now = time.time()
        return await self._write(lambda conn: self._expunge_tx(conn, mailbox_id, uids, now))

    async def mailbox_snapshot(self, mailbox_id: str) -> MailboxSnapshot:
        def q(conn: sqlite3.Connection) -> MailboxSnapshot:
            row = conn.execute("SELECT * FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
            if row is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            messages, recent = [], []
            for r in conn.execute("SELECT uid, flags, modseq, recent FROM messages WHERE mailbox_id = ? ORDER BY uid",
                                  (mailbox_id,)):
                messages.append(MessageFlags(r[0], _flags(r[1]), r[2]))
                if r[3]:
                    recent.append(r[0])
            return MailboxSnapshot(_mailbox(row), messages, recent)

        return await self._read(q)

    async def get_messages(self, mailbox_id: str, uids: Sequence[int], *,
                           content: bool = True) -> list[MessageRecord]:
        wanted = sorted(set(uids))
        columns = "*" if content else _RECORD_META

        def q(conn: sqlite3.Connection) -> list[MessageRecord]:
            out: list[MessageRecord] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                out.extend(_record(r, content) for r in conn.execute(
                    f"SELECT {columns} FROM messages WHERE mailbox_id = ? AND uid IN ({_placeholders(len(chunk))}) "
                    "ORDER BY uid", (mailbox_id, *chunk)))
            return out

        return await self._read(q) if wanted else []

    async def set_flags(
        self, mailbox_id: str, uids: Sequence[int], mode: str, flags: Sequence[str], *,
        unchangedsince: int | None = None,
    ) -> FlagChange:
        if mode not in ("+", "-", ""):
            raise ValueError(f"invalid flag mode {mode!r}")
        wanted = sorted(set(uids))
        given = list(dict.fromkeys(flags))
        now = time.time()

        def tx(conn: sqlite3.Connection) -> FlagChange:
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                rows.extend(conn.execute(
                    f"SELECT id, uid, flags, modseq FROM messages WHERE mailbox_id = ? "
                    f"AND uid IN ({_placeholders(len(chunk))}) ORDER BY uid", (mailbox_id, *chunk)).fetchall())
            updates = []
            modified = []
            for r in rows:
                if unchangedsince is not None and r["modseq"] > unchangedsince:
                    modified.append(r["uid"])
                    continue
                current = list(_flags(r["flags"]))
                if mode == "+":
                    new = current + [f for f in given if f not in current]
                elif mode == "-":
                    new = [f for f in current if f not in given]
                else:
                    new = given
                if new != current:
                    updates.append((r, tuple(new)))
            if not updates:
                return FlagChange([], modified)
            base = self._bump_modseq(conn, mailbox_id, len(updates))
            changed = []
            for k, (r, new_flags) in enumerate(updates):
                modseq = base + k + 1
                text = _json(list(new_flags))
                conn.execute("UPDATE messages SET flags = ?, modseq = ? WHERE id = ?", (text, modseq, r["id"]))
                conn.execute(
                    "INSERT INTO journal (mailbox_id, modseq, command, uid, message_id, flags, created) "
                    "VALUES (?, ?, 'FETCH', ?, ?, ?, ?)", (mailbox_id, modseq, r["uid"], r["id"], text, now))
                changed.append(MessageFlags(r["uid"], new_flags, modseq))
            return FlagChange(changed, modified)

        return await self._write(tx)

    async def copy_messages(self, source_id: str, uids: Sequence[int], target_id: str, *,
                            move: bool = False) -> list[tuple[int, int]]:
        wanted = sorted(set(uids))
        now = time.time()

        def tx(conn: sqlite3.Connection) -> list[tuple[int, int]]:
            src = conn.execute("SELECT user_id FROM mailboxes WHERE id = ?", (source_id,)).fetchone()
            dst = conn.execute("SELECT user_id, uid_validity FROM mailboxes WHERE id = ?", (target_id,)).fetchone()
            if src is None or dst is None:
                raise NotFound("no such mailbox")
            if src["user_id"] != dst["user_id"]:
                raise InvalidInput("messages can only be copied between mailboxes of one user", "mailbox")
            rows = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                rows.extend(conn.execute(
                    f"SELECT * FROM messages WHERE mailbox_id = ? AND uid IN ({_placeholders(len(chunk))})",
                    (source_id, *chunk)).fetchall())
            if not rows:
                return []
            rows.sort(key=lambda r: r["uid"])
            if not move:
                total = sum(r["size"] for r in rows)
                user = conn.execute("SELECT storage_used, quota FROM users WHERE id = ?",
                                    (dst["user_id"],)).fetchone()
                quota = user["quota"] if user["quota"] is not None else self.default_quota
                if user["storage_used"] + total > quota:
                    raise QuotaExceeded("copying these messages would exceed the quota")
                conn.execute("UPDATE users SET storage_used = storage_used + ? WHERE id = ?",
                             (total, dst["user_id"]))
            n = len(rows)
            alloc = conn.execute(
                "UPDATE mailboxes SET uid_next = uid_next + ?, highest_modseq = highest_modseq + ? "
                "WHERE id = ? RETURNING uid_next - ?, highest_modseq - ?", (n, n, target_id, n, n)).fetchone()
            first_uid, base_modseq = alloc[0], alloc[1]
            pairs = []
            refs: Counter[str] = Counter()
            for k, r in enumerate(rows):
                mid = new_id()
                uid, modseq = first_uid + k, base_modseq + k + 1
                values = dict(r)
                values.update(id=mid, mailbox_id=target_id, uid=uid, modseq=modseq, recent=1)
                columns = list(values)
                conn.execute(f"INSERT INTO messages ({', '.join(columns)}) VALUES ({_placeholders(len(columns))})",
                             [values[c] for c in columns])
                blobs = [b[0] for b in conn.execute("SELECT blob FROM message_blobs WHERE message_id = ?", (r["id"],))]
                conn.executemany("INSERT INTO message_blobs (message_id, blob) VALUES (?, ?)",
                                 [(mid, b) for b in blobs])
                refs.update(blobs)
                conn.execute(
                    "INSERT INTO journal (mailbox_id, modseq, command, uid, message_id, flags, created) "
                    "VALUES (?, ?, 'EXISTS', ?, ?, ?, ?)", (target_id, modseq, uid, mid, r["flags"], now))
                pairs.append((r["uid"], uid))
            if move:
                # the copies took over the references; delete the sources without releasing them
                conn.executemany("DELETE FROM message_blobs WHERE message_id = ?", [(r["id"],) for r in rows])
                self._expunge_tx(conn, source_id, [r["uid"] for r in rows], now, release=False)
            else:
                conn.executemany("UPDATE blobs SET refcount = refcount + ?, changed = ? WHERE hash = ?",
                                 [(c, now, b) for b, c in refs.items()])
            return pairs

        return await self._write(tx)

    async def recent(self, mailbox_id: str, *, claim: bool, uids: Sequence[int] | None = None) -> list[int]:
        wanted = sorted(set(uids)) if uids is not None else None

        def run(conn: sqlite3.Connection) -> list[int]:
            verb = "UPDATE messages SET recent = 0" if claim else "SELECT uid FROM messages"
            tail = " RETURNING uid" if claim else ""
            if wanted is None:
                rows = conn.execute(f"{verb} WHERE mailbox_id = ? AND recent = 1{tail}", (mailbox_id,)).fetchall()
            else:
                rows = []
                for start in range(0, len(wanted), 500):
                    chunk = wanted[start:start + 500]
                    rows.extend(conn.execute(
                        f"{verb} WHERE mailbox_id = ? AND recent = 1 AND uid IN ({_placeholders(len(chunk))}){tail}",
                        (mailbox_id, *chunk)).fetchall())
            return sorted(r[0] for r in rows)

        if wanted is not None and not wanted:
            return []
        return await (self._write(run) if claim else self._read(run))

    async def search_rows(self, mailbox_id: str, *, with_header: bool = True,
                          uids: Sequence[int] | None = None) -> list[SearchRow]:
        columns = "uid, flags, modseq, internal_date, size, header_date"
        if with_header:
            columns += ", skeleton, skeleton_compressed, mime_tree"
        sql = f"SELECT {columns} FROM messages WHERE mailbox_id = ?"

        def row(r: sqlite3.Row) -> SearchRow:
            return SearchRow(uid=r["uid"], flags=_flags(r["flags"]), modseq=r["modseq"],
                             internal_date=_dt(r["internal_date"]), size=r["size"],
                             header_date=_dt(r["header_date"]) if r["header_date"] is not None else None,
                             header=stored_header(r["skeleton"], r["skeleton_compressed"], r["mime_tree"])
                             if with_header else b"")

        def q(conn: sqlite3.Connection) -> list[SearchRow]:
            if uids is None:
                return [row(r) for r in conn.execute(sql + " ORDER BY uid", (mailbox_id,))]
            wanted = sorted(set(uids))
            out: list[SearchRow] = []
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                out.extend(row(r) for r in conn.execute(
                    f"{sql} AND uid IN ({_placeholders(len(chunk))}) ORDER BY uid", (mailbox_id, *chunk)))
            return out

        return await self._read(q)

    async def text_search(self, mailbox_id: str, needle: str, *, headers_too: bool) -> set[int]:
        """UIDs whose body text (and, with ``headers_too``, top-level header) contains ``needle``, ignoring case.

        The index holds case-folded text. Needles of three or more characters are ``LIKE`` patterns the trigram
        index answers; shorter ones, and ones with ``%`` or ``_`` (LIKE's wildcards), are matched against the
        indexed text of this mailbox only."""
        folded = needle.casefold()
        if len(folded) >= 3 and not any(c in folded for c in "%_"):
            # the index drives (CROSS JOIN keeps that order): a rare needle touches only its few candidates
            one = ("SELECT m.uid FROM message_text AS t CROSS JOIN messages AS m ON m.text_id = t.rowid "
                   "WHERE t.{} LIKE ?1 AND m.mailbox_id = ?2")
            sql = one.format("body") + (" UNION " + one.format("head") if headers_too else "")
            args = (f"%{folded}%", mailbox_id)
            return set(await self._read(lambda conn: [r[0] for r in conn.execute(sql, args)]))

        def scan(conn: sqlite3.Connection) -> set[int]:
            return {uid for uid, body, head in conn.execute(
                "SELECT m.uid, t.body, t.head FROM messages m JOIN message_text t ON t.rowid = m.text_id "
                "WHERE m.mailbox_id = ?", (mailbox_id,)) if folded in body or (headers_too and folded in head)}

        return await self._read(scan)

    async def changes_since(self, mailbox_id: str, modseq: int) -> list[JournalEntry]:
        return await self._read(lambda conn: [
            JournalEntry(mailbox_id=r["mailbox_id"], modseq=r["modseq"], command=r["command"], uid=r["uid"],
                         message_id=r["message_id"], flags=_flags(r["flags"]) if r["flags"] is not None else None,
                         created=_dt(r["created"]))
            for r in conn.execute(
                "SELECT * FROM journal WHERE mailbox_id = ? AND modseq > ? ORDER BY modseq", (mailbox_id, modseq))
        ])

    async def prune_journal(self, older_than: dt.datetime) -> int:
        return await self._write(
            lambda conn: conn.execute("DELETE FROM journal WHERE created < ?", (_ts(older_than),)).rowcount
        )

    # blobs -------------------------------------------------------------------------------------------------
    async def get_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        wanted = sorted(set(hashes))

        def q(conn: sqlite3.Connection) -> dict[str, bytes]:
            found: dict[str, bytes] = {}
            for start in range(0, len(wanted), 500):
                chunk = wanted[start:start + 500]
                for row in conn.execute(
                    f"SELECT hash, data, compressed FROM blobs WHERE hash IN ({_placeholders(len(chunk))})", chunk
                ):
                    found[row[0]] = _unpack(row[1], row[2])
            missing = [h for h in wanted if h not in found]
            if missing:
                raise NotFound(f"missing blob {missing[0]}")
            return found

        return await self._read(q) if wanted else {}

    async def blob_refcount(self, blob: str) -> int:
        def q(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT refcount FROM blobs WHERE hash = ?", (blob,)).fetchone()
            return int(row[0]) if row else 0

        return await self._read(q)

    async def blob_stats(self) -> BlobStats:
        def q(conn: sqlite3.Connection) -> BlobStats:
            row = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(stored_size), 0), COALESCE(SUM(raw_size), 0), "
                "COALESCE(SUM(refcount = 0), 0) FROM blobs").fetchone()
            return BlobStats(count=row[0], stored_bytes=row[1], raw_bytes=row[2], unreferenced=row[3])

        return await self._read(q)

    async def collect_garbage(self, unreferenced_before: dt.datetime, *, limit: int = 1000) -> int:
        cutoff = _ts(unreferenced_before)
        return await self._write(lambda conn: conn.execute(
            "DELETE FROM blobs WHERE hash IN (SELECT hash FROM blobs WHERE refcount <= 0 AND changed < ? LIMIT ?)",
            (cutoff, limit)).rowcount)

    # operations --------------------------------------------------------------------------------------------
    async def storage_bytes(self) -> int:
        """Size of the database on disk: the main file plus the write-ahead log."""
        def q(conn: sqlite3.Connection) -> int:
            pages = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
            wal = self.path.with_name(self.path.name + "-wal")
            return int(pages + (wal.stat().st_size if wal.exists() else 0))

        return await self._read(q)

    async def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): SQLite's integrity check, blob reference counts that disagree
        with the messages, references to missing blobs, messages whose parts and references disagree."""
        def q(conn: sqlite3.Connection) -> list[str]:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
            problems += [f"foreign key violation in {row[0]}" for row in conn.execute("PRAGMA foreign_key_check")]
            for row in conn.execute(
                "SELECT b.hash, b.refcount, COUNT(mb.message_id) FROM blobs b "
                "LEFT JOIN message_blobs mb ON mb.blob = b.hash GROUP BY b.hash "
                "HAVING b.refcount != COUNT(mb.message_id)"
            ):
                problems.append(f"blob {row[0]} has refcount {row[1]} but {row[2]} referencing messages")
            for row in conn.execute(
                "SELECT mb.message_id, mb.blob FROM message_blobs mb LEFT JOIN blobs b ON b.hash = mb.blob "
                "WHERE b.hash IS NULL"
            ):
                problems.append(f"message {row[0]} references missing blob {row[1]}")
            for row in conn.execute("SELECT id, parts FROM messages"):
                want = {p.blob for p in _parts_load(row["parts"])}
                have = {r[0] for r in conn.execute("SELECT blob FROM message_blobs WHERE message_id = ?", (row["id"],))}
                if want != have:
                    problems.append(f"message {row['id']} parts {sorted(want)} but references {sorted(have)}")
            for row in conn.execute("SELECT m.id FROM messages m LEFT JOIN message_text t ON t.rowid = m.text_id "
                                    "WHERE t.rowid IS NULL"):
                problems.append(f"message {row[0]} has no search text")
            for row in conn.execute("SELECT t.rowid FROM message_text t "
                                    "WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.text_id = t.rowid)"):
                problems.append(f"search text {row[0]} belongs to no message")
            return problems

        return await self._read(q)


async def open_sqlite_store(
    path: str | os.PathLike[str], *, default_quota: int, synchronous: str = "full", readers: int = 4
) -> SqliteStore:
    """Open (creating if needed) the SQLite store at ``path``."""
    store = SqliteStore(Path(path), default_quota=default_quota, synchronous=synchronous, readers=readers)
    await store.open()
    return store


__all__ = ["PreparedMessage", "SqliteStore", "new_id", "open_sqlite_store"]
