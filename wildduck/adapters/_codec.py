"""What every storage adapter encodes the same way: ids, compressed bodies, blob parts as JSON, the top-level header
block, the search values kept per message (the sender's day and the header keys), the IMAP forms of the message
structure, and how a flag update combines flags. Pure functions: nothing here touches an engine."""

from __future__ import annotations

import json
import secrets
import struct
import time
import unicodedata
import zlib
from collections.abc import Sequence
from typing import Any

from wildduck.model import FlagMode, StoredPart
from wildduck.protocols.mime import basesubject, headers, searchable

#: compress only when it saves at least this fraction
_MIN_SAVING = 0.05
#: the header keys SEARCH narrows in the engine, each from a stored value ``search_<key>``
SEARCH_FIELDS = ("from", "to", "cc", "bcc", "subject")
#: between the values of one search column: a needle without it matches the column iff it matches one value
SEARCH_SEPARATOR = "\n"


def search_fold(text: str) -> str:
    """Text as the search index keeps it and needles as they are looked up: folded the way the domain compares
    (:func:`wildduck.protocols.mime.searchable.fold`)."""
    return searchable.fold(text)


def legacy_fold(text: str) -> str | None:
    """``text`` case-folded as the index kept text and header values before :func:`search_fold` (``casefold``),
    when that form can find only such older rows: it differs and holds a precomposed character (which text folded
    now, decomposed, never holds). A lookup adds it so that messages stored before still match a non-ASCII needle
    (by the rules they were stored with); None when it is not needed or could also match newer rows. Only the
    MongoDB adapter needs it, for documents its maintenance has not re-indexed yet (SQLite's schema v15 re-indexed
    every stored message)."""
    old = text.casefold()
    if old == search_fold(text) or unicodedata.normalize("NFD", old) == old:
        return None
    return old


def index_text(body: str, head: str) -> tuple[str, str]:
    """The body text and the header text of a message (``PreparedMessage.text`` and ``header_text``) as the search
    index keeps them: folded (:func:`search_fold`)."""
    return search_fold(body), search_fold(head)


def stored_text(raw: bytes) -> tuple[str, str]:
    """The body text and the header text search reads of a stored message, from its bytes (recomposed): what an
    ingest of the same bytes extracts (``protocols.mime.analyze``'s ``text`` and ``header_text``, from the MIME
    tree built again as it builds it), before :func:`index_text`."""
    from wildduck.protocols.mime import scanner, text, tree

    root = tree.build(raw, scanner())
    return text.extract_text(raw, root), text.search_header_text(raw, root)


def new_id() -> str:
    """24 hex digits: 4 bytes of seconds since the epoch, 8 random bytes (sortable by creation, like ObjectIds)."""
    return struct.pack(">I", int(time.time()) & 0xFFFFFFFF).hex() + secrets.token_hex(8)


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


def parts_json(parts: Sequence[StoredPart]) -> str:
    """The stored form of a message's blob parts."""
    return to_json([[p.offset, p.length, p.blob, p.encoding] for p in parts])


def parts_load(text: str) -> list[StoredPart]:
    """The inverse of :func:`parts_json`."""
    return [StoredPart(offset=o, length=n, blob=b, encoding=e) for o, n, b, e in json.loads(text)]


def header_block(skeleton: bytes, tree: Any) -> bytes:
    """The top-level header block of a message's skeleton, given its MIME tree."""
    return skeleton[: int(tree.get("bs", len(skeleton)))] if isinstance(tree, dict) else b""


def search_columns(header: bytes) -> tuple[int | None, str | None, str | None, str | None, str | None, str | None]:
    """The search values of a message with this top-level header block, in the order (sent day, *SEARCH_FIELDS):
    the sender's calendar day of its Date header as a proleptic Gregorian ordinal (None without a parseable Date),
    and per header key its values folded (:func:`search_fold`), joined by :data:`SEARCH_SEPARATOR` (None when the
    field is absent).
    They are what the domain's exact evaluator computes from the same bytes (``protocols.mime.searchable``), kept
    so that an engine can decide the SENT* keys and narrow the header keys without reading the header."""
    from wildduck.protocols.mime import headers, searchable

    parsed = headers.fields(header)
    day = searchable.sent_date(parsed)

    def joined(name: str) -> str | None:
        found = searchable.values(parsed, name)  # one per copy of the field; equal copies kept once
        return SEARCH_SEPARATOR.join(dict.fromkeys(search_fold(v) for v in found)) if found else None

    return (day.toordinal() if day is not None else None, joined("from"), joined("to"), joined("cc"), joined("bcc"),
            joined("subject"))


def sort_columns(subject: str, imap_envelope: bytes | None) -> tuple[str, str, str, str, str, str]:
    """What SORT compares of a message with this decoded Subject and ENVELOPE in its IMAP form, in collation form
    (:func:`wildduck.protocols.mime.sortkeys.sort_keys`): (base subject, from, to, cc, display from, display
    to), kept so that SORT reads a few short strings per message and parses nothing."""
    from wildduck.protocols.mime.sortkeys import sort_keys

    return sort_keys(subject, imap_envelope)


def own_id(message_id: str | None) -> str | None:
    """A message's own id for threading, from its Message-ID header value: the first valid id (None: none)."""
    found = headers.message_ids(message_id)
    return found[0] if found else None


def imap_forms(envelope: Any, bodystructure: Any) -> tuple[bytes, bytes, bytes, bytes | None, bytes | None,
                                                            bytes | None]:
    """ENVELOPE, BODYSTRUCTURE and BODY in their IMAP forms, then the same for UTF8=ACCEPT (None where equal), of a
    message with this ENVELOPE and BODYSTRUCTURE data (:func:`wildduck.protocols.mime.imapform.forms`)."""
    from wildduck.protocols.mime.imapform import forms

    return forms(envelope, bodystructure)


def apply_flags(mode: FlagMode, current: tuple[str, ...], given: list[str]) -> tuple[str, ...]:
    """A message's flags after a flag update (``given`` without duplicates; order kept, additions last)."""
    if mode is FlagMode.ADD:
        return current + tuple(f for f in given if f not in current)
    if mode is FlagMode.REMOVE:
        return tuple(f for f in current if f not in given)
    return tuple(given)


def blob_keys(parts: Sequence[StoredPart], blobs: dict[str, bytes]) -> list[str]:
    """The distinct blobs of a prepared message's parts, sorted; ValueError when the message lacks the bytes of
    one (a message must never be stored with a reference to nothing)."""
    keys = sorted({part.blob for part in parts})
    missing = [b for b in keys if b not in blobs]
    if missing:
        raise ValueError(f"prepared message lacks the bytes of blob {missing[0]}")
    return keys


def thread_columns(header: bytes, subject: str) -> tuple[tuple[str, ...], str, bool]:
    """What threading keeps of a stored message with this top-level header block and decoded subject: the ids it
    refers to, its base subject, whether that removed a reply marker (as ingest computes them)."""
    extracted = basesubject.extract(subject)
    return headers.references(header, {"hs": 0, "bs": len(header)}), extracted.text, extracted.reply_or_forward
