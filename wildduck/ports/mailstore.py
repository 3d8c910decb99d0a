"""The ``MailStore`` role: users, addresses, mailboxes, message metadata and the journal."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

from wildduck.domain.models import (
    Address,
    AppendResult,
    FlagChange,
    JournalEntry,
    Mailbox,
    MailboxCounts,
    MailboxSnapshot,
    MailboxSpec,
    MessageRecord,
    MessageSummary,
    NewMessage,
    SearchRow,
    User,
)
from wildduck.errors import DomainError


class MailStore(Protocol):
    """Persistent users, addresses, mailboxes, messages and the per-mailbox journal.

    Conformance (tests/adapters/) is the definition of correct. The rules every adapter keeps:

    * ``unameview`` and ``addrview`` are unique; a clash raises :class:`wildduck.errors.AlreadyExists`.
    * Unknown ids raise :class:`wildduck.errors.NotFound`.
    * UIDs in a mailbox strictly increase and are never reused; every change gets a MODSEQ above the mailbox's
      previous highest; a batch of N messages for one mailbox allocates N UIDs in one step.
    * A message and the references it takes on its blobs are committed together or not at all.
    """

    async def close(self) -> None: ...

    # users ---------------------------------------------------------------------------------------------------
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
        """Create a user with its addresses ``(address, addrview)`` (the first one is main) and mailboxes,
        atomically. Raises AlreadyExists if the username or any address is taken."""
        ...

    async def get_user(self, user_id: str) -> User: ...

    async def find_user(self, unameview: str) -> User | None: ...

    async def list_users(self) -> list[User]: ...

    async def set_password(self, user_id: str, password_hash: str) -> None: ...

    async def set_quota(self, user_id: str, quota: int | None) -> None: ...

    async def delete_user(self, user_id: str) -> None:
        """Delete the user, its addresses, mailboxes, messages and journal; release its blob references."""
        ...

    # addresses -----------------------------------------------------------------------------------------------
    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False) -> Address: ...

    async def remove_address(self, addrview: str) -> None:
        """Remove an address. The main address of a user cannot be removed (InvalidInput)."""
        ...

    async def list_addresses(self, user_id: str) -> list[Address]: ...

    async def resolve_address(self, addrview: str) -> Address | None:
        """The address whose ``addrview`` is exactly this key, or None."""
        ...

    # mailboxes -----------------------------------------------------------------------------------------------
    async def list_mailboxes(self, user_id: str) -> list[Mailbox]: ...

    async def get_mailbox(self, mailbox_id: str) -> Mailbox: ...

    async def find_mailbox(self, user_id: str, path: str) -> Mailbox | None: ...

    async def create_mailbox(self, user_id: str, spec: MailboxSpec) -> Mailbox:
        """Create a mailbox (AlreadyExists if the path is taken)."""
        ...

    async def rename_mailbox(self, mailbox_id: str, new_path: str) -> None:
        """Rename a mailbox and every mailbox below it (``path/...``); AlreadyExists if a target is taken. The
        renamed mailboxes keep their UIDVALIDITY and messages."""
        ...

    async def delete_mailbox(self, mailbox_id: str) -> None:
        """Delete a mailbox with its messages (releasing their blobs and quota) and journal."""
        ...

    async def set_subscribed(self, user_id: str, path: str, subscribed: bool) -> bool:
        """Subscribe or unsubscribe a name (whether or not a mailbox has it; RFC 3501 6.3.6). A subscription
        survives DELETE of its mailbox and follows RENAME. Returns whether anything changed."""
        ...

    async def list_subscriptions(self, user_id: str) -> list[str]:
        """Subscribed names, sorted."""
        ...

    async def mailbox_counts(self, mailbox_id: str) -> MailboxCounts: ...

    # messages ------------------------------------------------------------------------------------------------
    async def append_messages(self, items: Sequence[NewMessage]) -> list[AppendResult | DomainError]:
        """Store every item in one transaction and return one outcome per item, in order.

        Blobs of each item's ``prepared.blobs`` are stored if absent (compressed, keyed by hash) and one reference
        is taken per item that uses them. An item that would put its user over quota (``storage_used + size >
        quota``, with ``default_quota`` for users whose quota is None) is not stored and its outcome is
        :class:`wildduck.errors.QuotaExceeded`; the others are. Each stored item adds an EXISTS journal entry and
        its size to the user's ``storage_used``. Returns only after the transaction is durably committed.
        """
        ...

    async def get_message(self, mailbox_id: str, uid: int) -> MessageRecord: ...

    async def list_messages(self, mailbox_id: str) -> list[MessageSummary]:
        """Every message of the mailbox in UID order, without bodies."""
        ...

    async def mailbox_snapshot(self, mailbox_id: str) -> MailboxSnapshot:
        """The mailbox, its messages (UID order) and which are \\Recent, consistent with each other."""
        ...

    async def get_messages(self, mailbox_id: str, uids: Sequence[int], *,
                           content: bool = True) -> list[MessageRecord]:
        """The messages with these UIDs that exist, in UID order. Without ``content`` the records leave out what
        recomposing the message takes (skeleton, parts, MIME tree: empty), for FETCH of metadata only."""
        ...

    async def set_flags(
        self, mailbox_id: str, uids: Sequence[int], mode: str, flags: Sequence[str], *,
        unchangedsince: int | None = None,
    ) -> FlagChange:
        """Add (``mode`` "+"), remove ("-") or replace ("") flags; every message whose flags change gets a new
        MODSEQ and a FETCH journal entry. Messages whose MODSEQ is above ``unchangedsince`` are left alone and
        listed in ``modified``."""
        ...

    async def copy_messages(self, source_id: str, uids: Sequence[int], target_id: str, *,
                            move: bool = False) -> list[tuple[int, int]]:
        """Copy (or move) messages to another mailbox of the same user in one transaction: new UIDs allocated as a
        range, blob references taken, quota checked (QuotaExceeded for a copy that does not fit; a move does not
        change storage). Returns (source UID, target UID) pairs in source UID order."""
        ...

    async def recent(self, mailbox_id: str, *, claim: bool, uids: Sequence[int] | None = None) -> list[int]:
        """UIDs still \\Recent (all, or among ``uids``). With ``claim`` they stop being recent for everybody else
        in the same transaction: exactly one session sees a message as recent (RFC 3501 2.3.2)."""
        ...

    async def search_rows(self, mailbox_id: str, *, with_header: bool = True,
                          uids: Sequence[int] | None = None) -> list[SearchRow]:
        """Per message (all, or those of ``uids``): what SEARCH evaluates (flags, dates, size and, with
        ``with_header``, the top-level header block), in UID order."""
        ...

    async def text_search(self, mailbox_id: str, needle: str, *, headers_too: bool) -> set[int]:
        """UIDs of the messages whose decoded body text (and, with ``headers_too``, decoded top-level header)
        contains ``needle``, ignoring case (Unicode simple case folding). Served by an index, not a scan."""
        ...

    async def expunge(self, mailbox_id: str, uids: Sequence[int]) -> list[int]:
        """Delete these messages (the ones that exist), release their blob references, subtract their sizes from
        the user's storage, add EXPUNGE journal entries. Returns the UIDs actually removed, ascending."""
        ...

    async def changes_since(self, mailbox_id: str, modseq: int) -> list[JournalEntry]:
        """Journal entries of the mailbox with MODSEQ above ``modseq``, ascending."""
        ...

    async def prune_journal(self, older_than: dt.datetime) -> int:
        """Delete journal entries created before ``older_than``; returns how many."""
        ...
