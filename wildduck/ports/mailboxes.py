"""The ``Mailboxes`` role: a user's mailboxes, subscriptions and per-mailbox status."""

from __future__ import annotations

from typing import Protocol

from wildduck.model import Mailbox, MailboxSpec, MailboxStatus


class Mailboxes(Protocol):
    """Mailboxes of a user. Paths are validated by the domain (``MailboxService``); the adapter stores them."""

    async def list_mailboxes(self, user_id: str) -> list[Mailbox]:
        """Every mailbox of the user, INBOX first, then by path."""
        ...

    async def get_mailbox(self, mailbox_id: str) -> Mailbox: ...

    async def find_mailbox(self, user_id: str, path: str) -> Mailbox | None: ...

    async def create_mailbox(self, user_id: str, spec: MailboxSpec) -> Mailbox:
        """Create a mailbox (AlreadyExists if the path is taken; NotFound for an unknown user)."""
        ...

    async def rename_mailbox(self, mailbox_id: str, new_path: str) -> list[Mailbox]:
        """Rename a mailbox and every mailbox below it (``path/...``) atomically; AlreadyExists if a target is
        taken. The renamed mailboxes keep their ids, UIDVALIDITY and messages; subscriptions follow the names.
        Returns the renamed mailboxes as they are now."""
        ...

    async def delete_mailbox(self, mailbox_id: str) -> None:
        """Delete a mailbox with its messages (releasing their blobs and storage) and journal. Subscriptions of
        its name stay (RFC 3501 6.3.6)."""
        ...

    async def set_subscribed(self, user_id: str, path: str, subscribed: bool) -> bool:
        """Subscribe or unsubscribe a name (whether or not a mailbox has it). Returns whether anything changed."""
        ...

    async def list_subscriptions(self, user_id: str) -> list[str]:
        """Subscribed names, sorted."""
        ...

    async def mailbox_status(self, mailbox_id: str, *, first_unseen: bool = True) -> MailboxStatus:
        """The mailbox with its message, unseen and \\Recent counts and total size, from one snapshot.

        The message and unseen counts and the size are kept with the mailbox (changed in the transaction of every
        change to its messages or their flags, so they always equal a recount): reading them costs the same for any
        mailbox size. ``first_unseen=False`` leaves out the one figure that takes a scan (``first_unseen`` is then
        None)."""
        ...
