"""Errors shared by every layer. Each says who is at fault.

* :class:`RemoteProtocolError`: the peer (client) broke the protocol.
* :class:`DomainError` and subclasses: a rule of the mail store refused the request (user-facing, mapped by each
  protocol to its own reply in one table).
* :class:`StoreError`: the storage engine failed; adapters map driver exceptions to it at the boundary.
* :class:`ConfigError`: the configuration is invalid; the message names the key and the file.
"""

from __future__ import annotations


class WildDuckError(Exception):
    """Base class of every error raised on purpose by wildduck."""


class ConfigError(WildDuckError):
    """Invalid configuration. The message names the key and the file."""


class RemoteProtocolError(WildDuckError):
    """The remote peer violated the protocol."""


class DomainError(WildDuckError):
    """A rule of the mail store refused the request."""


class NotFound(DomainError):
    """The user, address, mailbox or message does not exist."""


class AlreadyExists(DomainError):
    """A unique name (username, address, mailbox path) is taken."""


class InvalidInput(DomainError):
    """A value supplied by the caller is malformed. ``field`` names the offending field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class QuotaExceeded(DomainError):
    """Storing the message would put the user over quota."""


class MessageTooLarge(DomainError):
    """The message is over the configured size limit."""


class AuthFailed(DomainError):
    """Wrong credentials (deliberately vague)."""


class RateLimited(DomainError):
    """Too many attempts; ``retry_after`` seconds until the next one is allowed."""

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class StoreError(WildDuckError):
    """The storage engine failed (I/O error, constraint we did not expect, driver error)."""


class NotPermitted(DomainError):
    """The operation is not allowed on this object (deleting INBOX or a special-use mailbox, renaming INBOX)."""


class TooManyConnections(DomainError):
    """The user holds every connection slot allowed."""


class MailboxGone(DomainError):
    """The selected mailbox was deleted by another session (its data must not be served any more)."""
