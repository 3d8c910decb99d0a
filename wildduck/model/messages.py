"""Messages: what is stored, what is read back, what changes."""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any

#: JSON-able value (the MIME tree, ENVELOPE and BODYSTRUCTURE data are stored as such).
Json = Any


class FlagMode(enum.StrEnum):
    """How a flag update combines the given flags with the current ones."""

    ADD = "+"
    REMOVE = "-"
    REPLACE = ""


@dataclass(frozen=True, slots=True)
class StoredPart:
    """One body cut out of the message and kept in the blob store (see ``protocols.mime``)."""

    #: byte offset of the body in the original message
    offset: int
    #: length of the body in the original message (transfer-encoded bytes)
    length: int
    #: key of the blob: lower-case hex SHA-256 of the stored bytes
    blob: str
    #: how the stored bytes turn back into the original ones, e.g. ``{"kind": "raw"}`` or base64 re-wrapping
    #: parameters; interpreted only by ``protocols.mime``
    encoding: Json


@dataclass(slots=True)
class PreparedMessage:
    """A message parsed and split for storage. Built once and stored for every recipient.

    ``skeleton`` is the original message with the bodies listed in ``parts`` cut out; ``blobs`` holds the bytes of
    those bodies keyed by blob hash (each stored once, whatever the number of recipients or repetitions).
    """

    size: int
    skeleton: bytes
    parts: list[StoredPart]
    blobs: dict[str, bytes]
    #: MIME tree with byte offsets into the original message (JSON-able, see ``protocols.mime``)
    mime_tree: Json
    #: IMAP ENVELOPE data (JSON-able nested lists)
    envelope: Json
    #: IMAP BODYSTRUCTURE data with extension data (JSON-able nested lists)
    bodystructure: Json
    #: decoded subject, Message-ID and Date header (None when absent or unparseable)
    subject: str
    message_id: str | None
    header_date: dt.datetime | None
    #: decoded plain text of the message (headers of interest and text bodies), for search
    text: str
    #: True if the message has a non-inline attachment
    has_attachments: bool = False
    #: the decoded top-level header block, for SEARCH TEXT
    header_text: str = ""
    #: threading: the ids the message refers to (References, else In-Reply-To; without brackets), the base subject
    #: (RFC 5256 §2.1) and whether extracting it removed a reply or forward marker
    references: tuple[str, ...] = ()
    base_subject: str = ""
    subject_reply: bool = False


@dataclass(slots=True)
class NewMessage:
    """One message to append to one mailbox."""

    user_id: str
    mailbox_id: str
    prepared: PreparedMessage
    flags: tuple[str, ...] = ()
    internal_date: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))
    #: the user's storage limit in bytes, decided by the domain (None: no limit); the adapter stores the message
    #: only if ``storage_used + size <= quota`` holds at the moment it adds the size (one conditional increment)
    quota: int | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    message_id: str
    mailbox_id: str
    uid: int
    modseq: int
    uid_validity: int


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """A stored message: metadata plus what it takes to recompose its bytes."""

    id: str
    user_id: str
    mailbox_id: str
    uid: int
    modseq: int
    flags: tuple[str, ...]
    internal_date: dt.datetime
    size: int
    skeleton: bytes
    parts: list[StoredPart]
    mime_tree: Json
    envelope: Json
    bodystructure: Json
    subject: str
    message_id: str | None
    header_date: dt.datetime | None
    #: ENVELOPE, BODYSTRUCTURE and BODY in their IMAP form (RFC 3501 7.4.2) as a session without UTF8=ACCEPT gets
    #: them; kept with the message at ingest (they never change), so FETCH copies them
    imap_envelope: bytes = b""
    imap_bodystructure: bytes = b""
    imap_body: bytes = b""
    #: the same for a session with UTF8=ACCEPT, or None when that is the same bytes (no 8-bit header text)
    imap_envelope_utf8: bytes | None = None
    imap_bodystructure_utf8: bytes | None = None
    imap_body_utf8: bytes | None = None
    #: RFC 8474's EMAILID: the id of the message as first stored, kept by its copies and moves
    email_id: str = ""
    #: the user's thread the message belongs to (RFC 8474's THREADID; assigned at ingest)
    thread_id: str = ""
    #: when the message was stored in this mailbox (RFC 8514's SAVEDATE: an append, copy or move)
    saved: dt.datetime | None = None
    #: threading data of the message (see :class:`PreparedMessage`)
    references: tuple[str, ...] = ()
    base_subject: str = ""
    subject_reply: bool = False


@dataclass(frozen=True, slots=True)
class MessageSummary:
    """Listing row (no bodies)."""

    id: str
    uid: int
    modseq: int
    flags: tuple[str, ...]
    internal_date: dt.datetime
    size: int
    subject: str
    thread_id: str = ""


@dataclass(frozen=True, slots=True)
class MessageFlags:
    """One message's UID, flags and MODSEQ (what a selected session keeps in memory)."""

    uid: int
    flags: tuple[str, ...]
    modseq: int


@dataclass(frozen=True, slots=True)
class FlagChange:
    """Outcome of a flag update: the messages whose flags changed, and those skipped because their MODSEQ was
    above UNCHANGEDSINCE (RFC 7162)."""

    changed: list[MessageFlags]
    modified: list[int]


@dataclass(frozen=True, slots=True)
class FlagsAndMoves:
    """Outcome of :meth:`wildduck.ports.Messages.flag_and_move`: the flag changes in the source mailbox, the moved
    messages as (source UID, target UID) pairs, and the UIDs removed for good (when there was no target)."""

    flagged: FlagChange
    moved: list[tuple[int, int]]
    removed: list[int]


@dataclass(frozen=True, slots=True)
class SearchRow:
    """What SEARCH evaluates for one message."""

    uid: int
    flags: tuple[str, ...]
    modseq: int
    internal_date: dt.datetime
    size: int
    header_date: dt.datetime | None
    #: the message's top-level header block (raw bytes; empty when the search needs no header)
    header: bytes
    #: RFC 8514's save date, RFC 8474's EMAILID and THREADID (for SAVED* and EMAILID / THREADID)
    saved: dt.datetime | None = None
    email_id: str = ""
    thread_id: str = ""

