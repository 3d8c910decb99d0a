"""The ``Messages`` role on SQLite: appends, reads, flags, copies, expunges and the \\Recent watermark."""

from __future__ import annotations

import datetime as dt
import sqlite3
import time
from array import array
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters._codec import apply_flags, blob_keys, index_text
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.mailboxes import mailbox_row
from wildduck.adapters.sqlite.queries import placeholders, select_in
from wildduck.adapters.sqlite.steps import (
    add_storage,
    adjust_refs,
    allocate,
    count_messages,
    one,
    remove_messages,
    unseen,
    write_journal,
)
from wildduck.adapters.sqlite.threading import assign_thread
from wildduck.errors import DomainError, InvalidInput, NotFound, QuotaExceeded
from wildduck.model import (
    AppendResult,
    FlagChange,
    FlagMode,
    FlagsAndMoves,
    JournalOp,
    MailboxSnapshot,
    MessageFlags,
    MessageRecord,
    MessageSummary,
    NewMessage,
    PreparedMessage,
)
from wildduck.model.mailboxes import MessageTable
from wildduck.ports.messages import SortKeyRow, ThreadKeyRow

_MESSAGE_COLUMNS = ("id, user_id, mailbox_id, uid, modseq, flags, internal_date, size, skeleton, skeleton_compressed, "
                    "parts, mime_tree, envelope, bodystructure, subject, message_id, header_date, has_attachments, "
                    "search_text, text_id, " + ", ".join((*codec.IMAP_FORMS, *codec.SEARCH_COLUMNS))
                    + ", email_id, thread_id, saved, refs, base_subject, subject_reply, "
                    + ", ".join(codec.SORT_COLUMNS) + ", own_id")
_INSERT_MESSAGE = f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES ({placeholders(len(_MESSAGE_COLUMNS.split(',')))})"


#: UIDs per statement of a metadata read (SQLite binds at most 32,766 parameters)
_META_CHUNK = 5000


@dataclass(frozen=True, slots=True)
class _Encoded:
    """A prepared message in its stored form (serialized once for all its recipients, outside the writer)."""

    skeleton: bytes
    compressed: bool
    parts: str
    mime_tree: str
    envelope: str
    bodystructure: str
    blobs: list[str]
    #: the IMAP forms of ENVELOPE, BODYSTRUCTURE and BODY (the ``codec.IMAP_FORMS`` columns)
    imap: tuple[bytes | None, ...]
    #: the sent day and the header search values (the ``codec.SEARCH_COLUMNS``)
    search: tuple[int | str | None, ...]
    #: what SORT compares of the subject and the addresses (the ``codec.SORT_COLUMNS``)
    sort: tuple[str, ...]
    #: the message's own id for threading (``own_id``)
    own: str | None

    @classmethod
    def of(cls, p: PreparedMessage) -> _Encoded:
        skeleton, compressed = codec.pack(p.skeleton)
        blobs = blob_keys(p.parts, p.blobs)
        imap = codec.imap_forms(p.envelope, p.bodystructure)
        return cls(skeleton, compressed, codec.parts_json(p.parts), codec.to_json(p.mime_tree),
                   codec.to_json(p.envelope), codec.to_json(p.bodystructure), blobs, imap,
                   codec.search_columns(codec.header_block(p.skeleton, p.mime_tree)),
                   codec.sort_columns(p.subject, imap[0]), codec.own_id(p.message_id))


def insert_text(conn: sqlite3.Connection, p: PreparedMessage) -> int:
    """The search index row of a prepared message (shared by the messages stored from it); its rowid."""
    return conn.execute("INSERT INTO message_text (body, head) VALUES (?, ?)",
                        index_text(p.text, p.header_text)).lastrowid or 0


def message_row(mid: str, user_id: str, mailbox_id: str, uid: int, modseq: int, flags: str,
                internal_date: dt.datetime, p: PreparedMessage, e: _Encoded, text_id: int, email_id: str,
                thread: str, saved: float) -> tuple[Any, ...]:
    """A new ``messages`` row, in the column order of ``_INSERT_MESSAGE`` (``flags`` in their stored form)."""
    return (mid, user_id, mailbox_id, uid, modseq, flags, codec.ts(internal_date), p.size, e.skeleton,
            int(e.compressed), e.parts, e.mime_tree, e.envelope, e.bodystructure, p.subject, p.message_id,
            codec.ts(p.header_date) if p.header_date else None, int(p.has_attachments), "", text_id, *e.imap,
            *e.search, email_id, thread, saved, " ".join(p.references), p.base_subject, int(p.subject_reply),
            *e.sort, e.own)


def _message_rows(conn: sqlite3.Connection, mailbox_id: str, uids: Sequence[int], columns: str) -> list[sqlite3.Row]:
    """``columns`` of the messages of the mailbox with these UIDs, in UID order."""
    return select_in(conn, f"SELECT {columns} FROM messages WHERE mailbox_id = ? AND uid IN ({{in}}) ORDER BY uid",
                     sorted(set(uids)), (mailbox_id,))


#: what SORT reads of a message (``ports.messages.SortKeyRow``), every column in the covering index ``messages_sort``
_SORT_KEYS = "uid, internal_date, COALESCE(header_date, internal_date), size, " + ", ".join(codec.SORT_COLUMNS) + ", 1"
#: the same without the address keys (empty, and 0 for "not read")
_SORT_KEYS_SHORT = "uid, internal_date, COALESCE(header_date, internal_date), size, sort_subject, '', '', '', '', '', 0"
#: the column each SORT key compares (those of ``_SORT_KEYS``): SQLite orders REAL as Python orders floats, and TEXT
#: (BINARY, the UTF-8 bytes) as Python orders ``str`` (by code point)
_ORDER_BY = {"ARRIVAL": "internal_date", "DATE": "COALESCE(header_date, internal_date)", "SIZE": "size",
             "SUBJECT": "sort_subject", "FROM": "sort_from", "TO": "sort_to", "CC": "sort_cc",
             "DISPLAYFROM": "sort_display_from", "DISPLAYTO": "sort_display_to"}
#: what THREAD reads of a message (``ports.messages.ThreadKeyRow``), every column in the covering index
#: ``messages_thread_keys``
_THREAD_KEYS = "uid, base_subject, COALESCE(header_date, internal_date), own_id, refs, subject_reply"


def _uid_rows(conn: sqlite3.Connection, columns: str, source: str, mailbox_id: str,
              uids: Sequence[int]) -> list[tuple[Any, ...]]:
    """``columns`` of the messages of the mailbox with these UIDs, in UID order, as plain tuples, from ``source``
    (the table, with an index to use); a run of UIDs (``1:*``) is read as a range, without an IN list."""
    cursor = conn.cursor()
    cursor.row_factory = None
    wanted = sorted(set(uids))
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(wanted), _META_CHUNK):
        chunk = wanted[start:start + _META_CHUNK]
        if chunk[-1] - chunk[0] == len(chunk) - 1:
            cursor.execute(f"SELECT {columns} FROM {source} WHERE mailbox_id = ? AND uid BETWEEN ? AND ? "
                           "ORDER BY uid", (mailbox_id, chunk[0], chunk[-1]))
        else:
            cursor.execute(f"SELECT {columns} FROM {source} WHERE mailbox_id = ? AND uid IN "
                           f"({placeholders(len(chunk))}) ORDER BY uid", (mailbox_id, *chunk))
        found.extend(cursor.fetchall())
    return found


def _set_flags(conn: sqlite3.Connection, mailbox_id: str, uids: Sequence[int], mode: FlagMode, given: list[str],
               unchangedsince: int | None, now: float) -> FlagChange:
    """The flag change of :meth:`MessagesRole.set_flags`, inside a write transaction."""
    updates: list[tuple[sqlite3.Row, tuple[str, ...]]] = []
    modified = []
    for r in _message_rows(conn, mailbox_id, uids, "id, uid, flags, modseq"):
        if unchangedsince is not None and r["modseq"] > unchangedsince:
            modified.append(r["uid"])
            continue
        current = codec.flags_load(r["flags"])
        new = apply_flags(mode, current, given)
        if new != current:
            updates.append((r, new))
    if not updates:
        return FlagChange([], modified)
    base = allocate(conn, mailbox_id, 0, len(updates))["base_modseq"]
    seen_before = sum("\\Seen" in codec.flags_load(r["flags"]) for r, _ in updates)
    seen_after = sum("\\Seen" in new for _, new in updates)
    count_messages(conn, mailbox_id, 0, seen_before - seen_after, 0)
    changed = [MessageFlags(r["uid"], new, base + k + 1) for k, (r, new) in enumerate(updates)]
    texts = [codec.flags_json(c.flags) for c in changed]
    conn.executemany("UPDATE messages SET flags = ?, modseq = ? WHERE id = ?",
                     [(text, c.modseq, r["id"]) for (r, _), c, text in zip(updates, changed, texts, strict=True)])
    write_journal(conn, [(mailbox_id, c.modseq, JournalOp.FLAGS, c.uid, r["id"], text, now)
                         for (r, _), c, text in zip(updates, changed, texts, strict=True)])
    return FlagChange(changed, modified)


def _copy(conn: sqlite3.Connection, source_id: str, uids: Sequence[int], target_id: str, move: bool,
          quota: int | None, now: float) -> list[tuple[int, int]]:
    """The copy or move of :meth:`MessagesRole.copy_messages`, inside a write transaction."""
    src = mailbox_row(conn, source_id)
    dst = mailbox_row(conn, target_id)
    if src["user_id"] != dst["user_id"]:
        raise InvalidInput("messages can only be copied between mailboxes of one user", "mailbox")
    rows = _message_rows(conn, source_id, uids, "*")
    if not rows:
        return []
    if not move and not add_storage(conn, dst["user_id"], sum(r["size"] for r in rows), quota):
        raise QuotaExceeded("copying these messages would exceed the quota")
    alloc = allocate(conn, target_id, len(rows), len(rows))
    pairs = []
    refs: Counter[str] = Counter()
    journal_rows = []
    for k, r in enumerate(rows):
        mid = codec.new_id()
        uid, modseq = alloc["first_uid"] + k, alloc["base_modseq"] + k + 1
        values = {**dict(r), "id": mid, "mailbox_id": target_id, "uid": uid, "modseq": modseq, "saved": now,
                  "email_id": r["email_id"] or r["id"]}
        conn.execute(f"INSERT INTO messages ({', '.join(values)}) VALUES ({placeholders(len(values))})",
                     list(values.values()))
        blobs = [b[0] for b in conn.execute("SELECT blob FROM message_blobs WHERE message_id = ?", (r["id"],))]
        conn.executemany("INSERT INTO message_blobs (message_id, blob) VALUES (?, ?)", [(mid, b) for b in blobs])
        refs.update(blobs)
        journal_rows.append((target_id, modseq, JournalOp.EXISTS, uid, mid, r["flags"], now))
        pairs.append((r["uid"], uid))
    write_journal(conn, journal_rows)
    count_messages(conn, target_id, len(rows), sum(unseen(r["flags"]) for r in rows), sum(r["size"] for r in rows))
    if move:
        # the copies took over the references and the storage; delete the sources without releasing them
        conn.executemany("DELETE FROM message_blobs WHERE message_id = ?", [(r["id"],) for r in rows])
        remove_messages(conn, source_id, [r["uid"] for r in rows], now, release=False)
    else:
        adjust_refs(conn, refs, now)
    return pairs


class MessagesRole(StoreBase):
    """``Messages``: every change allocates its UIDs and MODSEQs in one step and writes its journal entries in
    its own transaction."""

    async def append_messages(self, items: Sequence[NewMessage]) -> list[AppendResult | DomainError]:
        """Store the items in one transaction (see the port). Each item's size is added to its user's storage by
        one conditional increment against ``item.quota``; an item that does not fit gets QuotaExceeded."""
        now = time.time()
        encoded: dict[int, _Encoded] = {}  # N recipients share one prepared message: serialize it once
        for item in items:
            if id(item.prepared) not in encoded:
                encoded[id(item.prepared)] = _Encoded.of(item.prepared)

        def tx(conn: sqlite3.Connection) -> list[AppendResult | DomainError]:
            outcomes: list[AppendResult | DomainError | None] = [None] * len(items)
            by_mailbox: dict[str, list[int]] = defaultdict(list)
            owners: dict[str, str | None] = {}
            for idx, item in enumerate(items):
                if item.mailbox_id not in owners:
                    row = conn.execute("SELECT user_id FROM mailboxes WHERE id = ?", (item.mailbox_id,)).fetchone()
                    owners[item.mailbox_id] = row[0] if row else None
                if owners[item.mailbox_id] != item.user_id:
                    outcomes[idx] = NotFound(f"no mailbox {item.mailbox_id} for user {item.user_id}")
                elif not add_storage(conn, item.user_id, item.prepared.size, item.quota):
                    outcomes[idx] = QuotaExceeded(f"user {item.user_id} is over quota")
                else:
                    by_mailbox[item.mailbox_id].append(idx)
            stored = [idx for indexes in by_mailbox.values() for idx in indexes]
            self._store_blobs(conn, [items[idx].prepared for idx in stored], encoded, now)
            text_ids: dict[int, int] = {}
            threads: dict[tuple[str, int], str] = {}  # the copies of one message for one user share a thread
            for mailbox_id, indexes in by_mailbox.items():
                alloc = allocate(conn, mailbox_id, len(indexes), len(indexes))
                message_rows: list[tuple[Any, ...]] = []
                blob_rows: list[tuple[str, str]] = []
                journal_rows = []
                for k, idx in enumerate(indexes):
                    item = items[idx]
                    p, e = item.prepared, encoded[id(item.prepared)]
                    if id(p) not in text_ids:  # one index row per prepared message, shared by its recipients
                        text_ids[id(p)] = insert_text(conn, p)
                    mid = codec.new_id()
                    uid, modseq = alloc["first_uid"] + k, alloc["base_modseq"] + k + 1
                    flags = codec.flags_json(item.flags)
                    thread = threads.get((item.user_id, id(p)))
                    if thread is None:
                        thread = threads[item.user_id, id(p)] = assign_thread(
                            conn, item.user_id, p.message_id, p.references, p.base_subject, now)
                    message_rows.append(message_row(mid, item.user_id, mailbox_id, uid, modseq, flags,
                                                    item.internal_date, p, e, text_ids[id(p)], mid, thread, now))
                    blob_rows.extend((mid, blob) for blob in e.blobs)
                    journal_rows.append((mailbox_id, modseq, JournalOp.EXISTS, uid, mid, flags, now))
                    outcomes[idx] = AppendResult(mid, mailbox_id, uid, modseq, alloc["uid_validity"])
                conn.executemany(_INSERT_MESSAGE, message_rows)
                conn.executemany("INSERT INTO message_blobs (message_id, blob) VALUES (?, ?)", blob_rows)
                write_journal(conn, journal_rows)
                count_messages(conn, mailbox_id, len(indexes), sum("\\Seen" not in items[idx].flags for idx in indexes),
                               sum(items[idx].prepared.size for idx in indexes))
            done = [o for o in outcomes if o is not None]
            assert len(done) == len(items), "every item gets an outcome"
            return done

        return await self._write(tx)

    @staticmethod
    def _store_blobs(conn: sqlite3.Connection, stored: list[PreparedMessage], encoded: dict[int, _Encoded],
                     now: float) -> None:
        """Store the blobs the messages use that are missing; one reference per stored message."""
        refs = Counter(blob for p in stored for blob in encoded[id(p)].blobs)
        if not refs:
            return
        present = {row[0] for row in select_in(conn, "SELECT hash FROM blobs WHERE hash IN ({in})", sorted(refs))}
        sources = {h: data for p in stored for h, data in p.blobs.items()}
        for blob in refs.keys() - present:
            raw = sources[blob]
            data, compressed = codec.pack(raw)
            conn.execute("INSERT INTO blobs (hash, data, compressed, raw_size, stored_size, refcount, changed) "
                         "VALUES (?, ?, ?, ?, ?, 0, ?)", (blob, data, int(compressed), len(raw), len(data), now))
        adjust_refs(conn, refs, now)

    async def get_message(self, mailbox_id: str, uid: int) -> MessageRecord:
        return await self._read(lambda conn: codec.record(one(
            conn, "SELECT * FROM messages WHERE mailbox_id = ? AND uid = ?", (mailbox_id, uid),
            f"no message {uid} in mailbox {mailbox_id}")))

    async def get_messages(self, mailbox_id: str, uids: Sequence[int], *,
                           content: bool = True) -> list[MessageRecord]:
        if content:
            return await self._read(
                lambda conn: [codec.record(r) for r in _message_rows(conn, mailbox_id, uids, "*")])

        def meta(conn: sqlite3.Connection) -> list[MessageRecord]:
            cursor = conn.cursor()
            cursor.row_factory = None
            meta_record = codec.meta_record
            wanted = sorted(set(uids))
            found: list[MessageRecord] = []
            for start in range(0, len(wanted), _META_CHUNK):
                chunk = wanted[start:start + _META_CHUNK]
                if chunk[-1] - chunk[0] == len(chunk) - 1:  # a run of UIDs (FETCH 1:*): a range, no IN list
                    cursor.execute(f"SELECT {codec.RECORD_META} FROM messages WHERE mailbox_id = ? AND uid BETWEEN ? "
                                   "AND ? ORDER BY uid", (mailbox_id, chunk[0], chunk[-1]))
                else:
                    cursor.execute(f"SELECT {codec.RECORD_META} FROM messages WHERE mailbox_id = ? AND uid IN "
                                   f"({placeholders(len(chunk))}) ORDER BY uid", (mailbox_id, *chunk))
                found.extend([meta_record(r, mailbox_id) for r in cursor])
            return found

        return await self._read(meta)

    async def list_messages(self, mailbox_id: str, *, newest: int | None = None) -> list[MessageSummary]:
        def q(conn: sqlite3.Connection) -> list[MessageSummary]:
            columns = ("SELECT id, uid, modseq, flags, internal_date, size, subject, thread_id FROM messages "
                       "WHERE mailbox_id = ?")
            rows = (conn.execute(columns + " ORDER BY uid", (mailbox_id,)) if newest is None else
                    reversed(conn.execute(columns + " ORDER BY uid DESC LIMIT ?", (mailbox_id, newest)).fetchall()))
            return [MessageSummary(id=r["id"], uid=r["uid"], modseq=r["modseq"], flags=codec.flags_load(r["flags"]),
                                   internal_date=codec.from_ts(r["internal_date"]), size=r["size"],
                                   subject=r["subject"], thread_id=r["thread_id"] or r["id"]) for r in rows]

        return await self._read(q)

    async def thread_counts(self, mailbox_id: str, thread_ids: Sequence[str]) -> dict[str, int]:
        wanted = sorted(set(thread_ids))
        return await self._read(lambda conn: {r[0]: r[1] for r in select_in(
            conn, "SELECT thread_id, COUNT(*) FROM messages WHERE mailbox_id = ? AND thread_id IN ({in}) "
                  "GROUP BY thread_id", wanted, (mailbox_id,))} if wanted else {})

    async def sort_keys(self, mailbox_id: str, uids: Sequence[int], *, addresses: bool) -> list[SortKeyRow]:
        """From the covering index ``messages_sort`` (schema v14): the wide rows are not read."""
        columns = _SORT_KEYS if addresses else _SORT_KEYS_SHORT
        return await self._read(lambda conn: _uid_rows(conn, columns, "messages INDEXED BY messages_sort",
                                                       mailbox_id, uids))

    async def sort_order(self, mailbox_id: str, criteria: Sequence[tuple[str, bool]]) -> list[int]:
        """Ordered by SQLite over a covering index (``messages_sort``, or ``messages_size`` for SIZE): only UIDs
        come back, so a SORT of 100,000 messages makes no row object in Python."""
        order = ", ".join(_ORDER_BY[key] + (" DESC" if reverse else "") for key, reverse in criteria)

        def q(conn: sqlite3.Connection) -> list[int]:
            cursor = conn.cursor()
            cursor.row_factory = None
            cursor.execute(f"SELECT uid FROM messages WHERE mailbox_id = ? ORDER BY {order}, uid", (mailbox_id,))
            return [uid for (uid,) in cursor]

        return await self._read(q)

    async def thread_keys(self, mailbox_id: str, uids: Sequence[int]) -> list[ThreadKeyRow]:
        """From the covering index ``messages_thread_keys`` (schema v14)."""

        def q(conn: sqlite3.Connection) -> list[ThreadKeyRow]:
            refs_load = codec.refs_load
            return [(uid, subject, sent, own, refs_load(refs), bool(reply))
                    for uid, subject, sent, own, refs, reply in _uid_rows(
                        conn, _THREAD_KEYS, "messages INDEXED BY messages_thread_keys", mailbox_id, uids)]

        return await self._read(q)

    async def mailbox_snapshot(self, mailbox_id: str) -> MailboxSnapshot:
        def q(conn: sqlite3.Connection) -> MailboxSnapshot:
            box = codec.mailbox(mailbox_row(conn, mailbox_id))
            table = MessageTable()
            # the covering index (mailbox_id, uid, modseq, flags) holds every column read: the rows stay on disk
            cursor = conn.cursor()
            cursor.row_factory = None
            cursor.execute("SELECT uid, modseq, flags FROM messages INDEXED BY messages_flags WHERE mailbox_id = ? "
                           "ORDER BY uid", (mailbox_id,))
            ids: dict[str, int] = {}  # flag lists by their stored text: each text is decoded once
            uids, modseqs, flag_ids, intern = table.uids, table.modseqs, table.flag_ids, table.flag_sets.intern
            for uid, modseq, text in cursor:
                number = ids.get(text)
                if number is None:
                    number = ids[text] = intern(codec.flags_load(text))
                    if number > 0xFFFF and flag_ids.typecode == "H":
                        flag_ids = table.flag_ids = array("I", flag_ids)
                uids.append(uid)
                modseqs.append(modseq)
                flag_ids.append(number)
            return MailboxSnapshot(box, table)

        return await self._read(q)

    async def set_flags(
        self, mailbox_id: str, uids: Sequence[int], mode: FlagMode, flags: Sequence[str], *,
        unchangedsince: int | None = None,
    ) -> FlagChange:
        """Change flags in one transaction; MODSEQs for the changed messages are allocated as one range."""
        mode = FlagMode(mode)
        given = list(dict.fromkeys(flags))
        now = time.time()
        return await self._write(lambda conn: _set_flags(conn, mailbox_id, uids, mode, given, unchangedsince, now),
                                 durable=False)

    async def copy_messages(self, source_id: str, uids: Sequence[int], target_id: str, *, move: bool = False,
                            quota: int | None = None) -> list[tuple[int, int]]:
        """Copy or move in one transaction (see the port); a copy adds its storage by one conditional increment
        against ``quota`` and fails whole (QuotaExceeded) when it does not fit."""
        now = time.time()
        return await self._write(lambda conn: _copy(conn, source_id, uids, target_id, move, quota, now))

    async def flag_and_move(self, mailbox_id: str, flag_uids: Sequence[int], flags: Sequence[str],
                            move_uids: Sequence[int], target_id: str | None) -> FlagsAndMoves:
        """Flags first (the moved messages too, so that their copies carry them), then the move or the removal,
        in one transaction."""
        given = list(dict.fromkeys(flags))
        now = time.time()

        def tx(conn: sqlite3.Connection) -> FlagsAndMoves:
            flagged = _set_flags(conn, mailbox_id, [*flag_uids, *move_uids], FlagMode.ADD, given, None, now)
            if target_id is None:
                return FlagsAndMoves(flagged, [], remove_messages(conn, mailbox_id, move_uids, now))
            return FlagsAndMoves(flagged, _copy(conn, mailbox_id, move_uids, target_id, True, None, now), [])

        return await self._write(tx)

    async def claim_recent(self, mailbox_id: str, up_to: int) -> int:
        """Raise the \\Recent watermark to ``up_to`` (never past ``uid_next``, never down) and return the one it
        replaced; the read and the update share the write transaction, so claims are serialized."""
        def tx(conn: sqlite3.Connection) -> int:
            previous = int(one(conn, "SELECT recent_from FROM mailboxes WHERE id = ?", (mailbox_id,),
                               f"no mailbox {mailbox_id}")[0])
            conn.execute("UPDATE mailboxes SET recent_from = max(recent_from, min(?, uid_next)) WHERE id = ?",
                         (up_to, mailbox_id))
            return previous

        return await self._write(tx, durable=False)

    async def expunge(self, mailbox_id: str, uids: Sequence[int]) -> list[int]:
        now = time.time()
        return await self._write(lambda conn: remove_messages(conn, mailbox_id, uids, now), durable=False)
