"""The document codec: how the value types of ``wildduck.model`` are stored in MongoDB documents and read back.

Ids are the model's 24-hex strings, used as ``_id``. Times are BSON dates (millisecond precision, read back as aware
UTC datetimes). Flags are an array of strings; the MIME tree, ENVELOPE and BODYSTRUCTURE are compact JSON strings
and the IMAP forms binary (FerretDB stores no arrays directly inside arrays); the skeleton is zlib-compressed when
that saves space. Each message keeps its search values (the sender's day, the header keys folded) and its folded
text, which the search role queries, with the version of the rules that derived them (:data:`SEARCH_VERSION`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bson import Binary

from wildduck.adapters._codec import (
    SEARCH_FIELDS,
    header_block,
    imap_forms,
    index_text,
    pack,
    parts_json,
    parts_load,
    search_columns,
    sort_columns,
    to_json,
    unpack,
)
from wildduck.model import (
    Address,
    AuthEvent,
    Mailbox,
    MessageFlags,
    MessageRecord,
    MessageSummary,
    NewMessage,
    PreparedMessage,
    SearchRow,
    User,
)
from wildduck.ports.messages import SortKeyRow, ThreadKeyRow
from wildduck.protocols.mime.headers import message_ids

Doc = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Head:
    """Where a mailbox's journal stands for readers (``journal.head``): the watermark and UIDNEXT as of it."""

    modseq: int
    uid_next: int

#: the fields holding ENVELOPE, BODYSTRUCTURE and BODY in their IMAP forms, then the UTF8=ACCEPT forms
IMAP_FIELDS = ("ienv", "ibs", "ibody", "ienv8", "ibs8", "ibody8")
#: the search value fields, in the order of :func:`wildduck.adapters._codec.search_columns`
SEARCH_VALUE_FIELDS = ("sent_day", *(f"s_{name}" for name in SEARCH_FIELDS))
#: the version of the rules a message's search data (``text``, ``head``, :data:`SEARCH_VALUE_FIELDS`) was derived
#: by, in :data:`SEARCH_VERSION_FIELD`: 2 since SEARCH matches as Dovecot's (every text part decoded, the headers of
#: every part, RFC 5051 folding); a document without it was indexed by an older version (plain and HTML parts,
#: ``casefold``) and is re-indexed by maintenance (``MaintenanceRole.reindex_search``)
SEARCH_VERSION = 2
SEARCH_VERSION_FIELD = "sver"
#: the messages whose search data an older version derived
STALE_SEARCH: Doc = {"$or": [{SEARCH_VERSION_FIELD: {"$exists": False}},
                             {SEARCH_VERSION_FIELD: {"$lt": SEARCH_VERSION}}]}
#: what SORT compares of the subject and the addresses, in collation form: an array of the six strings of
#: :func:`wildduck.adapters._codec.sort_columns` (a message stored before it was kept has none: computed on read)
SORT_FIELD = "skeys"
#: what recomposing a message takes, and its search text: left out when a record without content is read
CONTENT_FIELDS = ("skel", "parts", "tree", "env", "bs", "text", "head")
#: the projection of a record without content
META_PROJECTION = {f: 0 for f in CONTENT_FIELDS}
#: what SORT reads of a message (with the string keys, or instead what they are computed from: see ``sort_keys``)
SORT_KEYS_PROJECTION = {"_id": 0, "uid": 1, "idate": 1, "hdate": 1, "size": 1, SORT_FIELD: 1}
#: what THREAD reads of a message
THREAD_KEYS_PROJECTION = {"_id": 0, "uid": 1, "idate": 1, "hdate": 1, "bsubj": 1, "msgid": 1, "refs": 1,
                          "sreply": 1}


def user(d: Doc, storage_used: int) -> User:
    return User(id=d["_id"], username=d["username"], unameview=d["unameview"], password_hash=d["password_hash"],
                quota=d["quota"], storage_used=storage_used, created=d["created"], disabled=bool(d["disabled"]),
                name=d["name"], tags=tuple(d.get("tags", ())))


def address(d: Doc) -> Address:
    return Address(id=d["_id"], user_id=d["user"], address=d["address"], addrview=d["addrview"],
                   main=bool(d["main"]), created=d["created"], name=d.get("name", ""), tags=tuple(d.get("tags", ())))


def auth_event(d: Doc) -> AuthEvent:
    return AuthEvent(id=d["_id"], user_id=d["user"], action=d["action"], result=d["result"], protocol=d["protocol"],
                     ip=d["ip"], source=d["source"], created=d["created"], last=d["last"], events=int(d["events"]),
                     expires=d["expires"])


def mailbox(d: Doc, h: Head, recent_from: int) -> Mailbox:
    """A mailbox document with its journal's watermark and its \\Recent watermark."""
    return Mailbox(id=d["_id"], user_id=d["user"], path=d["path"], special_use=d["special_use"],
                   uid_validity=int(d["uid_validity"]), uid_next=h.uid_next, highest_modseq=h.modseq,
                   subscribed=bool(d["subscribed"]), recent_from=recent_from)


def search_fields(text: str, header_text: str, header: bytes) -> Doc:
    """The search data of a message with this body text and header text (as ``PreparedMessage`` has them) and this
    top-level header block, as its document keeps them (:data:`SEARCH_VERSION`)."""
    body, head = index_text(text, header_text)
    return {"text": body, "head": head, **dict(zip(SEARCH_VALUE_FIELDS, search_columns(header), strict=True)),
            SEARCH_VERSION_FIELD: SEARCH_VERSION}


class Encoded:
    """A prepared message in its stored form (serialized once for all its recipients)."""

    __slots__ = ("blobs", "fields")

    def __init__(self, p: PreparedMessage, blobs: list[str]) -> None:
        skeleton, compressed = pack(p.skeleton)
        forms = imap_forms(p.envelope, p.bodystructure)
        self.blobs = blobs
        self.fields: Doc = {
            "size": p.size, "skel": Binary(skeleton), "skz": compressed, "parts": parts_json(p.parts),
            "tree": to_json(p.mime_tree), "env": to_json(p.envelope), "bs": to_json(p.bodystructure),
            "subject": p.subject, "msgid": p.message_id, "hdate": p.header_date, "ha": p.has_attachments,
            "blobs": blobs, **search_fields(p.text, p.header_text, header_block(p.skeleton, p.mime_tree)),
            **{f: (Binary(v) if v is not None else None) for f, v in zip(IMAP_FIELDS, forms, strict=True)},
            "refs": list(p.references), "bsubj": p.base_subject, "sreply": p.subject_reply,
            SORT_FIELD: list(sort_columns(p.subject, forms[0])),
        }


def message_doc(mid: str, item: NewMessage, e: Encoded, uid: int, modseq: int, internal_date: Any, thread: str,
                saved: Any) -> Doc:
    """A new message document (its EMAILID is its own id)."""
    flags = list(dict.fromkeys(item.flags))
    return {"_id": mid, "user": item.user_id, "mailbox": item.mailbox_id, "uid": uid, "modseq": modseq,
            "flags": flags, "seen": "\\Seen" in flags, "idate": internal_date, "email": mid, "thread": thread,
            "saved": saved, **e.fields}


def _bytes(value: Any) -> bytes | None:
    return bytes(value) if value is not None else None


def record(d: Doc) -> MessageRecord:
    """A message record; without content when the document was read with :data:`META_PROJECTION`."""
    content = "skel" in d
    parts = parts_load(d["parts"]) if content else []
    size = int(d["size"])
    return MessageRecord(
        id=d["_id"], user_id=d["user"], mailbox_id=d["mailbox"], uid=int(d["uid"]), modseq=int(d["modseq"]),
        flags=tuple(d["flags"]), internal_date=d["idate"], size=size,
        skeleton=unpack(d["skel"], d["skz"], size - sum(p.length for p in parts)) if content else b"",
        parts=parts, mime_tree=json.loads(d["tree"]) if content else {},
        envelope=json.loads(d["env"]) if content else None,
        bodystructure=json.loads(d["bs"]) if content else None,
        subject=d["subject"], message_id=d["msgid"], header_date=d["hdate"],
        imap_envelope=bytes(d["ienv"]), imap_bodystructure=bytes(d["ibs"]), imap_body=bytes(d["ibody"]),
        imap_envelope_utf8=_bytes(d["ienv8"]), imap_bodystructure_utf8=_bytes(d["ibs8"]),
        imap_body_utf8=_bytes(d["ibody8"]), email_id=d.get("email") or d["_id"], thread_id=d.get("thread") or d["_id"],
        saved=d.get("saved") or d["idate"], references=tuple(d.get("refs", ())), base_subject=d.get("bsubj", ""),
        subject_reply=bool(d.get("sreply")),
    )


def _seconds(value: Any) -> float:
    return float(value.timestamp())


def sort_key_row(d: Doc, keys: Sequence[str] | None) -> SortKeyRow:
    """A message's sort keys from a document read with ``uid``, ``idate``, ``hdate`` and ``size``, and its string
    keys (:data:`SORT_FIELD`; None: the address keys were not asked for, only the subject's is in the row)."""
    arrival = _seconds(d["idate"])
    sent = _seconds(d["hdate"]) if d.get("hdate") is not None else arrival
    uid, size = int(d["uid"]), int(d["size"])
    if keys is None:
        subject = d[SORT_FIELD][0] if SORT_FIELD in d else ""
        return (uid, arrival, sent, size, subject, "", "", "", "", "", 0)
    return (uid, arrival, sent, size, keys[0], keys[1], keys[2], keys[3], keys[4], keys[5], 1)


def thread_key_row(d: Doc) -> ThreadKeyRow:
    """A message's threading data from a document read with :data:`THREAD_KEYS_PROJECTION`."""
    arrival = d["idate"]
    sent = d.get("hdate") or arrival
    own = message_ids(d.get("msgid"))
    return (int(d["uid"]), d.get("bsubj", ""), _seconds(sent), own[0] if own else None, tuple(d.get("refs", ())),
            bool(d.get("sreply")))


def summary(d: Doc) -> MessageSummary:
    return MessageSummary(id=d["_id"], uid=int(d["uid"]), modseq=int(d["modseq"]), flags=tuple(d["flags"]),
                          internal_date=d["idate"], size=int(d["size"]), subject=d["subject"],
                          thread_id=d.get("thread") or d["_id"])


def message_flags(d: Doc) -> MessageFlags:
    return MessageFlags(int(d["uid"]), tuple(d["flags"]), int(d["modseq"]))


def search_row(d: Doc, with_header: bool) -> SearchRow:
    header = b""
    if with_header:
        header = header_block(unpack(d["skel"], d["skz"]), json.loads(d["tree"]))
    return SearchRow(uid=int(d["uid"]), flags=tuple(d["flags"]), modseq=int(d["modseq"]), internal_date=d["idate"],
                     size=int(d["size"]), header_date=d["hdate"], header=header, saved=d.get("saved"),
                     email_id=d.get("email") or d["_id"], thread_id=d.get("thread") or d["_id"])
