"""The ``Importer`` role: what ``wildduck migrate`` writes into the target deployment. Unlike the ``Accounts``,
``Mailboxes`` and ``Messages`` writes, it keeps what the source store chose: ids, UIDVALIDITY, UIDNEXT,
HIGHESTMODSEQ, and each message's UID, MODSEQ, flags, dates, EMAILID and thread.

Every call is idempotent by id, so that a migration interrupted at any point can be run again: what is already in
the target is skipped, never written twice. The imported mailbox has no journal below its HIGHESTMODSEQ: a client
that knows an older MODSEQ of it is told the journal was pruned (a full resync, RFC 7162's rule for a server that
forgot); one that knows exactly the imported HIGHESTMODSEQ carries on.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from wildduck.model import Address, Mailbox, PreparedMessage, User


@dataclass(frozen=True, slots=True)
class ImportedMessage:
    """One message to import as it is in the source store: ``prepared`` is its content (re-derived from its
    bytes: blobs, search text, IMAP forms), the rest what the source assigned."""

    id: str
    uid: int
    modseq: int
    flags: tuple[str, ...]
    internal_date: dt.datetime
    saved: dt.datetime
    email_id: str
    thread_id: str
    prepared: PreparedMessage


class Importer(Protocol):
    async def import_user(self, user: User, addresses: Sequence[Address], subscriptions: Sequence[str]) -> bool:
        """Create the user with its id, username, password hash, quota, disabled state, name, tags and creation
        time (its storage starts at 0: imported messages add theirs), its addresses with their ids (main, name,
        tags) and its subscribed names. Returns False, changing nothing, when a user with this id exists;
        AlreadyExists when the username or an address belongs to another user (nothing of this user stays)."""
        ...

    async def import_mailbox(self, mailbox: Mailbox) -> bool:
        """Create the mailbox of an imported user with its id, path, special use, UIDVALIDITY, UIDNEXT,
        HIGHESTMODSEQ, subscription mirror and \\Recent watermark, empty. Later UIDVALIDITY values of the user stay
        above it. Returns False, changing nothing, when a mailbox with this id exists; AlreadyExists when another
        mailbox of the user has the path; NotFound for an unknown user."""
        ...

    async def import_messages(self, mailbox_id: str, messages: Sequence[ImportedMessage]) -> None:
        """Insert messages into an imported mailbox with their ids, UIDs, MODSEQs, flags, dates, EMAILIDs and
        threads, all or none: their blobs (stored once, referenced per message), search text, the mailbox's
        counters, the user's storage (no quota applies) and the thread references later messages are threaded by.
        No journal entry is written (the mailbox's journal starts at its HIGHESTMODSEQ). NotFound for an unknown
        mailbox; InvalidInput for a UID not below its UIDNEXT or a MODSEQ above its HIGHESTMODSEQ; AlreadyExists
        when an id or UID is taken. (Without transactions, MongoDB inserts in UID order: an interrupted call leaves
        the messages below some UID, and blob references and storage that ``recount_storage`` and the collector
        settle.)"""
        ...
