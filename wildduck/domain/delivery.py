"""Delivery pipeline: resolve recipients, parse once, store once per recipient (attachments once in all)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import trio

from wildduck.domain import addresses
from wildduck.domain.models import AppendResult, NewMessage, PreparedMessage, StoredPart, User
from wildduck.errors import DomainError, MessageTooLarge, NotFound, QuotaExceeded
from wildduck.ports.mailstore import MailStore
from wildduck.ports.pubsub import PubSub
from wildduck.protocols import mime
from wildduck.protocols.mime.lines import crlf

log = logging.getLogger(__name__)

#: CPU-bound parsing runs in worker threads, at most this many at once
_parse_limiter = trio.CapacityLimiter(2)


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient address that resolved to a local user."""

    address: str
    user_id: str
    mailbox_id: str


def prepare(raw: bytes, *, inline_text_limit: int = mime.DEFAULT_INLINE_TEXT_LIMIT) -> PreparedMessage:
    """Parse ``raw`` and split it for storage (CPU-bound; call from a worker thread for big messages).

    Bare LFs become CRLF first (LMTP refuses them; an IMAP APPEND may carry them).
    """
    a = mime.analyze(crlf(raw), inline_text_limit=inline_text_limit)
    return PreparedMessage(
        size=a.size,
        skeleton=a.skeleton,
        parts=[StoredPart(offset=p.offset, length=p.length, blob=p.blob, encoding=p.encoding) for p in a.parts],
        blobs=a.blobs,
        mime_tree=a.tree,
        envelope=a.envelope,
        bodystructure=a.bodystructure,
        subject=a.subject,
        message_id=a.message_id,
        header_date=a.header_date,
        text=a.text,
        has_attachments=a.has_attachments,
        header_text=a.header_text,
    )


#: messages up to this size are parsed on the event loop (a thread hop costs more than parsing them)
INLINE_PARSE_LIMIT = 16 * 1024


async def prepare_soon(raw: bytes) -> PreparedMessage:
    """``prepare`` for async callers: small messages at once, bigger ones in a worker thread."""
    if len(raw) <= INLINE_PARSE_LIMIT:
        return prepare(raw)
    return await trio.to_thread.run_sync(prepare, raw, limiter=_parse_limiter)


def user_channel(user_id: str) -> str:
    """Pub/sub channel that carries the nudges of one user's mailboxes."""
    return f"user:{user_id}"


def nudge_payload(mailbox_id: str, origin: str = "") -> str:
    """A nudge: the mailbox whose journal grew, and optionally who wrote it (a session skips its own nudges)."""
    return f"{mailbox_id} {origin}" if origin else mailbox_id


def parse_nudge(payload: str) -> tuple[str, str]:
    """(mailbox id, origin) of a nudge payload (origin "" when not given)."""
    mailbox_id, _, origin = payload.partition(" ")
    return mailbox_id, origin


class DeliveryService:
    """Accepts mail for local users (used by LMTP, and later by the API's upload)."""

    def __init__(self, store: MailStore, pubsub: PubSub, *, default_quota: int, max_message_size: int) -> None:
        self.store = store
        self.pubsub = pubsub
        self.default_quota = default_quota
        self.max_message_size = max_message_size

    def quota_of(self, user: User) -> int:
        return user.quota if user.quota is not None else self.default_quota

    async def resolve(self, address: str, size_hint: int | None = None) -> Recipient:
        """Resolve a recipient address to a user's INBOX.

        Raises InvalidInput (malformed address), NotFound (no such user), QuotaExceeded (user over quota, or
        ``size_hint`` would put the user over quota).
        """
        key = addresses.lookup_key(address, "recipient")
        found = await self.store.resolve_address(key)
        if found is None:
            raise NotFound(f"unknown recipient {address}")
        user = await self.store.get_user(found.user_id)
        if user.disabled:
            raise NotFound(f"unknown recipient {address}")
        quota = self.quota_of(user)
        if user.storage_used >= quota or (size_hint is not None and user.storage_used + size_hint > quota):
            raise QuotaExceeded(f"mailbox of {address} is over quota")
        inbox = await self.store.find_mailbox(user.id, "INBOX")
        if inbox is None:  # every user is created with an INBOX; a missing one is a broken store
            raise NotFound(f"INBOX of {address} is missing")
        return Recipient(address=address, user_id=user.id, mailbox_id=inbox.id)

    async def deliver(
        self,
        raw: bytes,
        recipients: Sequence[Recipient],
        *,
        flags: Sequence[str] = (),
        internal_date: dt.datetime | None = None,
    ) -> list[AppendResult | DomainError]:
        """Store ``raw`` once for every distinct mailbox among ``recipients``; one outcome per recipient, in order.

        Returns only after the store has durably committed. Cancellation: once the store call has started it
        completes (the caller may not see the result).
        """
        if len(raw) > self.max_message_size:
            raise MessageTooLarge(f"message of {len(raw)} bytes is over the {self.max_message_size} byte limit")
        prepared = await prepare_soon(raw)
        when = internal_date or dt.datetime.now(dt.UTC)
        # one copy per mailbox: two addresses of one user get one message, like WildDuck
        order: dict[str, int] = {}
        items: list[NewMessage] = []
        for r in recipients:
            if r.mailbox_id not in order:
                order[r.mailbox_id] = len(items)
                items.append(NewMessage(r.user_id, r.mailbox_id, prepared, tuple(flags), when))
        outcomes = await self.store.append_messages(items)
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, AppendResult):
                await self.pubsub.publish(user_channel(item.user_id), item.mailbox_id)
        return [outcomes[order[r.mailbox_id]] for r in recipients]
