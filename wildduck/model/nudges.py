"""Nudges: lossy pub/sub hints that a mailbox's journal grew (the journal itself is the truth)."""

from __future__ import annotations

from dataclasses import dataclass

#: the longest reason a logout nudge carries (WildDuck's API takes at most 128 characters)
MAX_REASON = 128


@dataclass(frozen=True, slots=True)
class Nudge:
    """``mailbox_id``'s journal has entries up to ``modseq``, written by ``origin`` (a session skips its own)."""

    mailbox_id: str
    modseq: int = 0
    origin: str = ""
    #: the mailbox was deleted or renamed (sessions that selected it must find out at once)
    gone: bool = False
    #: why the user's sessions are logged out (a logout nudge: ``ends_account`` with a reason); "" otherwise
    reason: str = ""

    @classmethod
    def account_gone(cls) -> Nudge:
        """The user's account was deleted or disabled: every session of the user must end."""
        return cls("", gone=True)

    @classmethod
    def logout(cls, reason: str) -> Nudge:
        """Every session of the user must end, telling the client ``reason`` (made one line of printable text,
        at most :data:`MAX_REASON` characters; an empty one says that the logout was requested)."""
        return cls("", gone=True, reason=clean_reason(reason) or "logout requested")

    @property
    def ends_account(self) -> bool:
        return self.gone and not self.mailbox_id

    @property
    def is_logout(self) -> bool:
        """A logout (the account is still there): sessions end with :attr:`reason`."""
        return self.ends_account and bool(self.reason)

    def encode(self) -> str:
        """A compact string form for pub/sub engines that carry strings (Redis, the node sockets); a logout's
        reason is the rest of the string (older receivers read it as the account gone)."""
        text = f"{self.mailbox_id} {self.modseq} {self.origin} {int(self.gone)}"
        return f"{text} {self.reason}" if self.reason else text

    @classmethod
    def decode(cls, text: str) -> Nudge:
        """The inverse of :meth:`encode`; a bare mailbox id (older senders) is a nudge with MODSEQ 0."""
        parts = text.split(" ", 4)
        try:
            return cls(parts[0], int(parts[1]) if len(parts) > 1 else 0, parts[2] if len(parts) > 2 else "",
                       len(parts) > 3 and parts[3] == "1", clean_reason(parts[4]) if len(parts) > 4 else "")
        except ValueError:
            return cls(parts[0])


def clean_reason(reason: str) -> str:
    """``reason`` as one line of text that every protocol can send: control characters become spaces, runs of
    spaces one, no leading "[" (an IMAP response code) and at most :data:`MAX_REASON` characters."""
    text = " ".join("".join(" " if ord(c) < 32 or 127 <= ord(c) < 160 else c for c in reason).split())
    return text.lstrip("[ ")[:MAX_REASON].rstrip()


@dataclass(frozen=True, slots=True)
class Resync:
    """Nudges were lost (overflow, a reconnect): every subscriber must re-read the journals it follows."""

    lost: int = 0


def user_channel(user_id: str) -> str:
    """The pub/sub channel that carries the nudges of one user's mailboxes."""
    return f"user:{user_id}"
