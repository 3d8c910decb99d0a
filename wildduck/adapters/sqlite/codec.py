"""The row codec: how the value types of ``wildduck.model`` are stored in SQLite columns and read back.

Times are stored as REAL seconds since the epoch (UTC), flags and the JSON-able message data as compact JSON text,
bodies zlib-compressed when that saves space. Nothing here touches a connection beyond reading a row.
"""

from __future__ import annotations

import datetime as dt
import json
import secrets
import sqlite3
import struct
import time
import zlib
from collections.abc import Sequence
from typing import Any

from wildduck.model import Address, Mailbox, MessageFlags, MessageRecord, StoredPart, User

#: compress only when it saves at least this fraction
_MIN_SAVING = 0.05

#: the ``messages`` columns of a record without what recomposing the message takes
RECORD_META = ("id, user_id, mailbox_id, uid, modseq, flags, internal_date, size, envelope, bodystructure, subject, "
               "message_id, header_date")


def new_id() -> str:
    """24 hex digits: 4 bytes of seconds since the epoch, 8 random bytes (sortable by creation, like ObjectIds)."""
    return struct.pack(">I", int(time.time()) & 0xFFFFFFFF).hex() + secrets.token_hex(8)


def ts(value: dt.datetime) -> float:
    """Seconds since the epoch; a naive datetime is taken as UTC."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.timestamp()


def from_ts(value: float) -> dt.datetime:
    """The aware UTC datetime of a stored timestamp."""
    return dt.datetime.fromtimestamp(value, dt.UTC)


def maybe_ts(value: float | None) -> dt.datetime | None:
    """:func:`from_ts`, passing None through."""
    return from_ts(value) if value is not None else None


def pack(data: bytes) -> tuple[bytes, bool]:
    """(stored bytes, compressed?): zlib when it saves space."""
    if len(data) < 64:
        return data, False
    packed = zlib.compress(data, 6)
    if len(packed) <= len(data) * (1 - _MIN_SAVING):
        return packed, True
    return data, False


def unpack(data: bytes, compressed: int, size: int | None = None) -> bytes:
    """The inverse of :func:`pack`. ``size``, the unpacked size when known, lets zlib allocate the output once
    (growing it as it goes peaks at about twice the size: a 20 MB message would briefly take 50 MB)."""
    if not compressed:
        return bytes(data)
    return zlib.decompress(data, bufsize=size) if size else zlib.decompress(data)


def to_json(value: Any) -> str:
    """Compact JSON text (non-ASCII kept as it is)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def flags_json(flags: Sequence[str]) -> str:
    """The stored form of a flag list: a JSON array, duplicates removed, order kept."""
    return to_json(list(dict.fromkeys(flags)))


def flags_load(text: str) -> tuple[str, ...]:
    """The inverse of :func:`flags_json`."""
    return tuple(json.loads(text))


def parts_json(parts: Sequence[StoredPart]) -> str:
    """The stored form of a message's blob parts."""
    return to_json([[p.offset, p.length, p.blob, p.encoding] for p in parts])


def parts_load(text: str) -> list[StoredPart]:
    """The inverse of :func:`parts_json`."""
    return [StoredPart(offset=o, length=n, blob=b, encoding=e) for o, n, b, e in json.loads(text)]


def stored_header(skeleton: bytes, compressed: int, mime_tree: str) -> bytes:
    """The top-level header block of a stored message (from its skeleton and MIME tree columns)."""
    raw = unpack(skeleton, compressed)
    tree = json.loads(mime_tree)
    return raw[: int(tree.get("bs", len(raw)))] if isinstance(tree, dict) else b""


def user(row: sqlite3.Row) -> User:
    """A ``users`` row."""
    return User(
        id=row["id"], username=row["username"], unameview=row["unameview"], password_hash=row["password_hash"],
        quota=row["quota"], storage_used=row["storage_used"], created=from_ts(row["created"]),
        disabled=bool(row["disabled"]), name=row["name"],
    )


def address(row: sqlite3.Row) -> Address:
    """An ``addresses`` row."""
    return Address(id=row["id"], user_id=row["user_id"], address=row["address"], addrview=row["addrview"],
                   main=bool(row["main"]), created=from_ts(row["created"]))


def mailbox(row: sqlite3.Row) -> Mailbox:
    """A ``mailboxes`` row (every column: ``SELECT *``)."""
    return Mailbox(
        id=row["id"], user_id=row["user_id"], path=row["path"], special_use=row["special_use"],
        uid_validity=row["uid_validity"], uid_next=row["uid_next"], highest_modseq=row["highest_modseq"],
        subscribed=bool(row["subscribed"]), recent_from=row["recent_from"],
    )


def message_flags(row: sqlite3.Row) -> MessageFlags:
    """From a row with ``uid``, ``flags`` and ``modseq`` columns."""
    return MessageFlags(row["uid"], flags_load(row["flags"]), row["modseq"])


def record(r: sqlite3.Row, content: bool = True) -> MessageRecord:
    """A message record; without ``content`` the row holds only :data:`RECORD_META`."""
    parts = parts_load(r["parts"]) if content else []
    return MessageRecord(
        id=r["id"], user_id=r["user_id"], mailbox_id=r["mailbox_id"], uid=r["uid"], modseq=r["modseq"],
        flags=flags_load(r["flags"]), internal_date=from_ts(r["internal_date"]), size=r["size"],
        # the skeleton is the message without its cut-out parts
        skeleton=unpack(r["skeleton"], r["skeleton_compressed"], r["size"] - sum(p.length for p in parts))
        if content else b"",
        parts=parts,
        mime_tree=json.loads(r["mime_tree"]) if content else {}, envelope=json.loads(r["envelope"]),
        bodystructure=json.loads(r["bodystructure"]), subject=r["subject"], message_id=r["message_id"],
        header_date=maybe_ts(r["header_date"]),
    )
