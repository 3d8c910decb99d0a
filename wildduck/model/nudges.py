"""Nudges: lossy pub/sub hints that a mailbox's journal grew (the journal itself is the truth)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Nudge:
    """``mailbox_id``'s journal has entries up to ``modseq``, written by ``origin`` (a session skips its own)."""

    mailbox_id: str
    modseq: int = 0
    origin: str = ""
    #: the mailbox was deleted or renamed (sessions that selected it must find out at once)
    gone: bool = False

    @classmethod
    def account_gone(cls) -> Nudge:
        """The user's account was deleted or disabled: every session of the user must end."""
        return cls("", gone=True)

    @property
    def ends_account(self) -> bool:
        return self.gone and not self.mailbox_id

    def encode(self) -> str:
        """A compact string form for pub/sub engines that carry strings (Redis)."""
        return f"{self.mailbox_id} {self.modseq} {self.origin} {int(self.gone)}"

    @classmethod
    def decode(cls, text: str) -> Nudge:
        """The inverse of :meth:`encode`; a bare mailbox id (older senders) is a nudge with MODSEQ 0."""
        parts = text.split(" ")
        try:
            return cls(parts[0], int(parts[1]) if len(parts) > 1 else 0, parts[2] if len(parts) > 2 else "",
                       len(parts) > 3 and parts[3] == "1")
        except ValueError:
            return cls(parts[0])


@dataclass(frozen=True, slots=True)
class Resync:
    """Nudges were lost (overflow, a reconnect): every subscriber must re-read the journals it follows."""

    lost: int = 0


def user_channel(user_id: str) -> str:
    """The pub/sub channel that carries the nudges of one user's mailboxes."""
    return f"user:{user_id}"
