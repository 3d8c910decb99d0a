"""Delivery: resolve recipients, parse once, store once per recipient mailbox (attachments once in all).

Used by LMTP, ``wildduck deliver`` and (soon) the API's upload; the storing itself is ``MessageService``'s, the one
ingest every path shares.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from wildduck.domain import addresses
from wildduck.domain.messages import MessageService, prepare_soon
from wildduck.errors import DomainError, NotFound, QuotaExceeded
from wildduck.model import AppendResult, User
from wildduck.ports import Accounts, Mailboxes

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Recipient:
    """A recipient address that resolved to a local user's INBOX."""

    address: str
    user: User
    mailbox_id: str


class DeliveryService:
    """Accepts mail for local users."""

    def __init__(self, accounts: Accounts, mailboxes: Mailboxes, messages: MessageService) -> None:
        self.accounts = accounts
        self.mailboxes = mailboxes
        self.messages = messages
        #: when this process last stored a delivery (for ``wildduck status``)
        self.last_delivery: dt.datetime | None = None

    @property
    def max_message_size(self) -> int:
        return self.messages.max_message_size

    async def resolve(self, address: str, size_hint: int | None = None) -> Recipient:
        """Resolve a recipient address to a user's INBOX.

        Raises InvalidInput (malformed address), NotFound (no such user, or a disabled one), QuotaExceeded (user
        over quota, or ``size_hint`` would put the user over quota).
        """
        key = addresses.lookup_key(address, "recipient")
        found = await self.accounts.resolve_address(key)
        if found is None:
            raise NotFound(f"unknown recipient {address}")
        user = await self.accounts.get_user(found.user_id)
        if user.disabled:
            raise NotFound(f"unknown recipient {address}")
        quota = self.messages.quota_of(user)
        if user.storage_used >= quota or (size_hint is not None and user.storage_used + size_hint > quota):
            raise QuotaExceeded(f"mailbox of {address} is over quota")
        inbox = await self.mailboxes.find_mailbox(user.id, "INBOX")
        if inbox is None:  # every user is created with an INBOX; a missing one is a broken store
            raise NotFound(f"INBOX of {address} is missing")
        return Recipient(address=address, user=user, mailbox_id=inbox.id)

    async def deliver(
        self,
        raw: bytes,
        recipients: Sequence[Recipient],
        *,
        flags: Sequence[str] = (),
        internal_date: dt.datetime | None = None,
    ) -> list[AppendResult | DomainError]:
        """Store ``raw`` once for every distinct mailbox among ``recipients``; one outcome per recipient, in order
        (two addresses of one user get one message, like WildDuck).

        Returns only after the store has durably committed. Cancellation: once the store call has started it
        completes (the caller may not see the result).
        """
        self.messages.check_size(len(raw))
        prepared = await prepare_soon(raw)
        order: dict[str, int] = {}
        targets: list[tuple[User, str]] = []
        for r in recipients:
            if r.mailbox_id not in order:
                order[r.mailbox_id] = len(targets)
                targets.append((r.user, r.mailbox_id))
        outcomes = await self.messages.store_prepared(targets, prepared, flags=flags, internal_date=internal_date)
        stored = sum(isinstance(o, AppendResult) for o in outcomes)
        if stored:
            self.last_delivery = dt.datetime.now(dt.UTC)
        log.info("message %s, %d bytes: stored in %d of %d mailboxes", prepared.message_id or "(no Message-ID)",
                 len(raw), stored, len(targets))
        return [outcomes[order[r.mailbox_id]] for r in recipients]
