"""The ``Messages`` role: message metadata, appends, flag changes, copies, expunges and the \\Recent watermark.

Rules every adapter keeps:

* UIDs in a mailbox strictly increase and are never reused; every change gets a MODSEQ above the mailbox's
  previous highest; a batch of N messages for one mailbox allocates N UIDs and N MODSEQs in one step.
* A message and the references it takes on its blobs (and its search text) are committed together or not at all.
* Every change writes its journal entries (``Journal``) in the same transaction.
* Storage use changes by one conditional increment: a message is stored only if ``storage_used + size <= quota``
  holds at that moment (``quota`` is decided by the domain; None means no limit), so concurrent appends from many
  instances never take a user over quota.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, TypeAlias

from wildduck.errors import DomainError
from wildduck.model import (
    AppendResult,
    FlagChange,
    FlagMode,
    FlagsAndMoves,
    MailboxSnapshot,
    MessageRecord,
    MessageSummary,
    NewMessage,
)

#: what SORT compares of a message (RFC 5256, RFC 5957), as the store keeps it: (UID, internal date, sent date,
#: RFC822.SIZE, then in collation form the base subject, from, to, cc, display from, display to, then 1 when the
#: address keys were read, else 0 and the five are empty); dates in seconds since the epoch, the sent date the Date
#: header's instant or, without a parseable one, the internal date. The strings are
#: ``wildduck.protocols.mime.sortkeys.sort_keys`` of the message's decoded Subject and ENVELOPE, computed at ingest
SortKeyRow: TypeAlias = tuple[int, float, float, int, str, str, str, str, str, str, int]
#: what THREAD (RFC 5256) reads of a message: (UID, base subject, sent date as for SORT, its own Message-ID (the
#: first valid id, None without one), the ids its References or In-Reply-To name, whether extracting the base
#: subject removed a reply or forward marker)
ThreadKeyRow: TypeAlias = tuple[int, str, float, str | None, tuple[str, ...], bool]

class Messages(Protocol):
    async def append_messages(self, items: Sequence[NewMessage]) -> list[AppendResult | DomainError]:
        """Store every item in one transaction; one outcome per item, in order.

        Blobs of each item's ``prepared.blobs`` are stored if absent and one reference is taken per stored item. An
        item whose size does not fit its ``quota`` gets :class:`wildduck.errors.QuotaExceeded`, an item whose
        mailbox is gone (or not the user's) gets NotFound; the others are stored, each with an EXISTS journal
        entry. Returns only after the transaction is durably committed.
        """
        ...

    async def get_message(self, mailbox_id: str, uid: int) -> MessageRecord: ...

    async def get_messages(self, mailbox_id: str, uids: Sequence[int], *,
                           content: bool = True) -> list[MessageRecord]:
        """The messages with these UIDs that exist, in UID order. Without ``content`` the records leave out what
        recomposing the message takes (skeleton, parts, MIME tree: empty) and the JSON-able ENVELOPE and
        BODYSTRUCTURE data (None): what FETCH of metadata needs is in the ``imap_*`` fields, which every record
        carries."""
        ...

    async def list_messages(self, mailbox_id: str, *, newest: int | None = None) -> list[MessageSummary]:
        """Every message of the mailbox in UID order, without bodies; with ``newest``, only the ``newest`` messages
        with the highest UIDs (still in UID order), read without touching the others."""
        ...

    async def sort_keys(self, mailbox_id: str, uids: Sequence[int], *, addresses: bool) -> list[SortKeyRow]:
        """The sort keys of the messages with these UIDs that exist, in UID order, in one round trip (only those
        columns are read); without ``addresses`` the address keys are left empty (and not read)."""
        ...

    async def sort_order(self, mailbox_id: str, criteria: Sequence[tuple[str, bool]]) -> list[int] | None:
        """Every UID of the mailbox in SORT's order for ``criteria`` (RFC 5256 / RFC 5957 keys, each with "reversed?";
        the first decides first, messages equal on every key in UID order), comparing the values :meth:`sort_keys`
        returns exactly as ``wildduck.protocols.imap.sort.order`` does, in one round trip; None when this store does
        not order messages itself (the caller orders the keys)."""
        ...

    async def thread_keys(self, mailbox_id: str, uids: Sequence[int]) -> list[ThreadKeyRow]:
        """The threading data of the messages with these UIDs that exist, in UID order, in one round trip."""
        ...

    async def thread_counts(self, mailbox_id: str, thread_ids: Sequence[str]) -> dict[str, int]:
        """How many messages of the mailbox each of these threads has (threads without any are left out)."""
        ...

    async def mailbox_snapshot(self, mailbox_id: str) -> MailboxSnapshot:
        """The mailbox and its messages (UID order), consistent with each other (NotFound if it is gone)."""
        ...

    async def set_flags(
        self, mailbox_id: str, uids: Sequence[int], mode: FlagMode, flags: Sequence[str], *,
        unchangedsince: int | None = None,
    ) -> FlagChange:
        """Add, remove or replace flags; every message whose flags change gets a new MODSEQ and a FLAGS journal
        entry. Messages whose MODSEQ is above ``unchangedsince`` are left alone and listed in ``modified``."""
        ...

    async def copy_messages(self, source_id: str, uids: Sequence[int], target_id: str, *, move: bool = False,
                            quota: int | None = None) -> list[tuple[int, int]]:
        """Copy (or move) messages to another mailbox of the same user in one transaction: new UIDs allocated as a
        range, blob references taken, storage added by one conditional increment against ``quota``
        (QuotaExceeded, nothing copied, when it does not fit; a move does not change storage). Returns (source
        UID, target UID) pairs in source UID order."""
        ...

    async def flag_and_move(self, mailbox_id: str, flag_uids: Sequence[int], flags: Sequence[str],
                            move_uids: Sequence[int], target_id: str | None) -> FlagsAndMoves:
        """Add ``flags`` to the messages ``flag_uids`` and ``move_uids``, then move ``move_uids`` to ``target_id``
        (None: remove them for good, releasing their storage), all in one transaction (POP3's UPDATE state: what a
        QUIT commits, it commits whole or not at all). UIDs that no longer exist are skipped."""
        ...

    async def claim_recent(self, mailbox_id: str, up_to: int) -> int:
        """Claim \\Recent: atomically raise the mailbox's watermark to ``up_to`` (a UID one above the last message
        the caller knows) and return the watermark as it was. The caller's \\Recent messages are those it knows
        with ``previous <= uid < up_to``: two sessions claiming at once never both get one message."""
        ...

    async def expunge(self, mailbox_id: str, uids: Sequence[int]) -> list[int]:
        """Delete these messages (the ones that exist), release their blob references, subtract their sizes from
        the user's storage, add EXPUNGE journal entries. Returns the UIDs actually removed, ascending."""
        ...
