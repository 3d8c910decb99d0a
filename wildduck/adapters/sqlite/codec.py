"""The row codec: how the value types of ``wildduck.model`` are stored in SQLite columns and read back.

Times are stored as REAL seconds since the epoch (UTC), flags and the JSON-able message data as compact JSON text,
bodies zlib-compressed when that saves space. Nothing here touches a connection beyond reading a row.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from wildduck.adapters._codec import (
    SEARCH_FIELDS,
    SEARCH_SEPARATOR,
    header_block,
    imap_forms,
    new_id,
    own_id,
    pack,
    parts_json,
    parts_load,
    search_columns,
    sort_columns,
    to_json,
    unpack,
)
from wildduck.model import Address, AuthEvent, Mailbox, MessageFlags, MessageRecord, StoredPart, User

__all__ = ["IMAP_FORMS", "RECORD_META", "SEARCH_COLUMNS", "SEARCH_FIELDS", "SEARCH_SEPARATOR", "SORT_COLUMNS",
           "address", "flags_json", "flags_load", "from_ts", "header_block", "imap_forms", "mailbox", "maybe_ts",
           "message_flags", "meta_record", "new_id", "own_id", "pack", "parts_json", "parts_load", "record",
           "search_columns", "sort_columns", "stored_header", "to_json", "ts", "unpack", "user"]

#: the ``messages`` columns holding the IMAP forms of ENVELOPE, BODYSTRUCTURE and BODY (schema v9), in the order of
#: :func:`wildduck.protocols.mime.imapform.forms`
IMAP_FORMS = ("imap_envelope", "imap_bodystructure", "imap_body", "imap_envelope_utf8", "imap_bodystructure_utf8",
              "imap_body_utf8")
#: the ``messages`` columns of a record without what recomposing the message takes, in the order
#: :func:`meta_record` reads them (no JSON but the flags: the structure is read in its IMAP form)
#: the ``messages`` columns of schema v11, in the order of :func:`search_columns`: the sender's calendar day of the
#: Date header as a proleptic Gregorian ordinal (``date.toordinal()``; NULL without a parseable Date), and per
#: header key its search values case-folded, joined by :data:`SEARCH_SEPARATOR` (NULL when the field is absent)
SEARCH_COLUMNS = ("sent_day", *(f"search_{name}" for name in SEARCH_FIELDS))
#: the ``messages`` columns of schema v14, in the order of :func:`sort_columns`: what SORT compares of a message's
#: subject and addresses, in collation form ('' without a value)
SORT_COLUMNS = ("sort_subject", "sort_from", "sort_to", "sort_cc", "sort_display_from", "sort_display_to")
RECORD_META = ("id, user_id, uid, modseq, flags, internal_date, size, subject, message_id, header_date, "
               + ", ".join(IMAP_FORMS) + ", email_id, thread_id, saved, refs, base_subject, subject_reply")


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


def flags_json(flags: Sequence[str]) -> str:
    """The stored form of a flag list: a JSON array, duplicates removed, order kept."""
    return to_json(list(dict.fromkeys(flags)))


def flags_load(text: str) -> tuple[str, ...]:
    """The inverse of :func:`flags_json`."""
    return tuple(json.loads(text))


def stored_header(skeleton: bytes, compressed: int, mime_tree: str) -> bytes:
    """The top-level header block of a stored message (from its skeleton and MIME tree columns)."""
    return header_block(unpack(skeleton, compressed), json.loads(mime_tree))


def user(row: sqlite3.Row) -> User:
    """A ``users`` row."""
    return User(
        id=row["id"], username=row["username"], unameview=row["unameview"], password_hash=row["password_hash"],
        quota=row["quota"], storage_used=row["storage_used"], created=from_ts(row["created"]),
        disabled=bool(row["disabled"]), name=row["name"], tags=tuple(json.loads(row["tags"])),
    )


def address(row: sqlite3.Row) -> Address:
    """An ``addresses`` row."""
    return Address(id=row["id"], user_id=row["user_id"], address=row["address"], addrview=row["addrview"],
                   main=bool(row["main"]), created=from_ts(row["created"]), name=row["name"],
                   tags=tuple(json.loads(row["tags"])))


def auth_event(row: sqlite3.Row) -> AuthEvent:
    """An ``authlog`` row."""
    return AuthEvent(id=row["id"], user_id=row["user_id"], action=row["action"], result=row["result"],
                     protocol=row["protocol"], ip=row["ip"], source=row["source"], created=from_ts(row["created"]),
                     last=from_ts(row["last"]), events=row["events"], expires=from_ts(row["expires"]))


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


def record(r: sqlite3.Row) -> MessageRecord:
    """A message record from a whole ``messages`` row (``SELECT *``)."""
    parts = parts_load(r["parts"])
    envelope, bodystructure = json.loads(r["envelope"]), json.loads(r["bodystructure"])
    stored = tuple(r[c] for c in IMAP_FORMS)
    forms = stored if stored[0] is not None else imap_forms(envelope, bodystructure)
    return MessageRecord(
        id=r["id"], user_id=r["user_id"], mailbox_id=r["mailbox_id"], uid=r["uid"], modseq=r["modseq"],
        flags=flags_load(r["flags"]), internal_date=from_ts(r["internal_date"]), size=r["size"],
        # the skeleton is the message without its cut-out parts
        skeleton=unpack(r["skeleton"], r["skeleton_compressed"], r["size"] - sum(p.length for p in parts)),
        parts=parts, mime_tree=json.loads(r["mime_tree"]), envelope=envelope, bodystructure=bodystructure,
        subject=r["subject"], message_id=r["message_id"], header_date=maybe_ts(r["header_date"]),
        imap_envelope=forms[0], imap_bodystructure=forms[1], imap_body=forms[2], imap_envelope_utf8=forms[3],
        imap_bodystructure_utf8=forms[4], imap_body_utf8=forms[5], email_id=r["email_id"] or r["id"],
        thread_id=r["thread_id"] or r["id"], saved=maybe_ts(r["saved"]) or from_ts(r["internal_date"]),
        references=refs_load(r["refs"]), base_subject=r["base_subject"], subject_reply=bool(r["subject_reply"]),
    )


def refs_load(text: str) -> tuple[str, ...]:
    """The ``refs`` column: message ids separated by spaces (an id has none)."""
    return tuple(text.split(" ")) if text else ()


_from_timestamp = dt.datetime.fromtimestamp
_UTC = dt.UTC
_flag_lists: dict[str, tuple[str, ...]] = {}
_new = object.__new__
#: the slot setters of MessageRecord: :func:`meta_record` fills a record without the frozen dataclass
#: ``__init__`` (an ``object.__setattr__`` call per field), half the cost when FETCH reads thousands
_set = {f.name: getattr(MessageRecord, f.name).__set__ for f in fields(MessageRecord)}
_set_id = _set.pop("id")
_set_user = _set.pop("user_id")
_set_mailbox = _set.pop("mailbox_id")
_set_uid = _set.pop("uid")
_set_modseq = _set.pop("modseq")
_set_flags = _set.pop("flags")
_set_internal = _set.pop("internal_date")
_set_size = _set.pop("size")
_set_skeleton = _set.pop("skeleton")
_set_parts = _set.pop("parts")
_set_tree = _set.pop("mime_tree")
_set_envelope = _set.pop("envelope")
_set_bodystructure = _set.pop("bodystructure")
_set_subject = _set.pop("subject")
_set_message_id = _set.pop("message_id")
_set_header_date = _set.pop("header_date")
_set_env = _set.pop("imap_envelope")
_set_bs = _set.pop("imap_bodystructure")
_set_body = _set.pop("imap_body")
_set_env8 = _set.pop("imap_envelope_utf8")
_set_bs8 = _set.pop("imap_bodystructure_utf8")
_set_body8 = _set.pop("imap_body_utf8")
_set_email = _set.pop("email_id")
_set_thread = _set.pop("thread_id")
_set_saved = _set.pop("saved")
_set_refs = _set.pop("references")
_set_base = _set.pop("base_subject")
_set_reply = _set.pop("subject_reply")
assert not _set, f"meta_record does not set {sorted(_set)}"  # a field added to MessageRecord must be set there
#: what every record without content shares (never mutated: records are read-only), so that reading thousands
#: allocates no container per record for the garbage collector to scan
_NO_PARTS: list[StoredPart] = []
_NO_TREE: dict[str, Any] = {}


def meta_record(r: tuple[Any, ...], mailbox_id: str) -> MessageRecord:
    """A record without content from a plain tuple of the :data:`RECORD_META` columns of a message of
    ``mailbox_id`` (the FETCH of metadata reads thousands: no row object, no JSON but the flags, each distinct flag
    text decoded once, the fields set straight into the slots)."""
    flags = r[4]
    decoded = _flag_lists.get(flags)
    if decoded is None:
        decoded = flags_load(flags)
        if len(_flag_lists) < 4096:
            _flag_lists[flags] = decoded
    record: MessageRecord = _new(MessageRecord)
    _set_id(record, r[0])
    _set_user(record, r[1])
    _set_mailbox(record, mailbox_id)
    _set_uid(record, r[2])
    _set_modseq(record, r[3])
    _set_flags(record, decoded)
    _set_internal(record, _from_timestamp(r[5], _UTC))
    _set_size(record, r[6])
    _set_skeleton(record, b"")
    _set_parts(record, _NO_PARTS)
    _set_tree(record, _NO_TREE)
    _set_envelope(record, None)
    _set_bodystructure(record, None)
    _set_subject(record, r[7])
    _set_message_id(record, r[8])
    header_date = r[9]
    _set_header_date(record, None if header_date is None else _from_timestamp(header_date, _UTC))
    _set_env(record, r[10])
    _set_bs(record, r[11])
    _set_body(record, r[12])
    _set_env8(record, r[13])
    _set_bs8(record, r[14])
    _set_body8(record, r[15])
    _set_email(record, r[16] or r[0])
    _set_thread(record, r[17] or r[0])
    saved = r[18]
    _set_saved(record, _from_timestamp(r[5] if saved is None else saved, _UTC))
    _set_refs(record, refs_load(r[19]))
    _set_base(record, r[20])
    _set_reply(record, bool(r[21]))
    return record
