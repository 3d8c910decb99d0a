"""Mailboxes: what to create, what is stored, what SELECT and STATUS read."""

from __future__ import annotations

from dataclasses import dataclass

from wildduck.model.messages import MessageFlags


@dataclass(frozen=True, slots=True)
class MailboxSpec:
    """A mailbox to create: its path and special-use flag (``\\Sent``...) or None."""

    path: str
    special_use: str | None = None
    subscribed: bool = True


@dataclass(frozen=True, slots=True)
class Mailbox:
    id: str
    user_id: str
    #: Unicode path, hierarchy separator ``/`` (INBOX is always ``INBOX``)
    path: str
    special_use: str | None
    uid_validity: int
    uid_next: int
    #: highest MODSEQ handed out in this mailbox (0 when nothing changed yet)
    highest_modseq: int
    subscribed: bool
    #: the \\Recent watermark: messages with a UID at or above it are \\Recent until a session claims them
    recent_from: int = 1


@dataclass(frozen=True, slots=True)
class MailboxSnapshot:
    """A mailbox and its messages read in one transaction (what SELECT starts from): ``mailbox.highest_modseq``
    covers exactly these messages; the ones with ``uid >= mailbox.recent_from`` are still \\Recent."""

    mailbox: Mailbox
    messages: list[MessageFlags]


@dataclass(frozen=True, slots=True)
class MailboxStatus:
    """What STATUS (and the API's mailbox listing) reports, read in one transaction."""

    mailbox: Mailbox
    messages: int
    unseen: int
    #: messages whose UID is at or above the \\Recent watermark
    recent: int
    size: int
    #: sequence number of the first unseen message (0 when none)
    first_unseen: int
