"""POP3's view of a user's mail, with WildDuck's rules: the maildrop is the newest ``max_messages`` messages of
INBOX (oldest first), taken once at login; a message's unique-id listing is its stored id (stable while it stays in
INBOX); QUIT marks the retrieved messages \\Seen and moves the deleted ones to Trash (marked \\Seen too), in one
commit. Without a Trash mailbox, deleted messages are removed for good (RFC 1939's own meaning of DELE).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from wildduck.domain.mailboxes import MailboxService
from wildduck.domain.messages import MessageService
from wildduck.model import FlagsAndMoves, Mailbox, MessageSummary, User

TRASH = "\\Trash"


@dataclass(frozen=True, slots=True)
class Maildrop:
    user: User
    inbox: Mailbox
    #: the messages of the session, oldest first (message number n is ``messages[n - 1]``)
    messages: list[MessageSummary]


class MaildropService:
    def __init__(self, mailboxes: MailboxService, messages: MessageService, *, max_messages: int = 250) -> None:
        self.mailboxes = mailboxes
        self.messages = messages
        self.max_messages = max_messages

    async def open(self, user: User) -> Maildrop:
        """The user's maildrop now (NoSuchMailbox if the user has no INBOX)."""
        inbox = await self.mailboxes.get(user.id, "INBOX")
        return Maildrop(user, inbox, await self.messages.summaries(inbox.id, newest=self.max_messages))

    async def update(self, drop: Maildrop, retrieved: Sequence[int], deleted: Sequence[int], *,
                     origin: str = "") -> FlagsAndMoves:
        """QUIT's changes, by UID: ``retrieved`` become \\Seen, ``deleted`` go to Trash. Messages expunged or moved
        meanwhile (through IMAP, another POP3 session) are skipped; the whole change is one commit."""
        trash = await self.mailboxes.special(drop.user.id, TRASH) if deleted else None
        return await self.messages.seen_and_move(drop.inbox, retrieved, deleted, trash, origin=origin)
