"""Value types below everything but ``errors``: what the domain, the ports and the adapters pass to each other.

Identifiers are opaque strings chosen by the storage adapter (24 hex digits, like MongoDB ObjectIds). Times are
timezone-aware UTC datetimes; adapters store them as they like.
"""

from wildduck.model.accounts import (
    AUTHLOG_BUCKET,
    EVERYTHING,
    Address,
    AuthEvent,
    Listing,
    User,
    auth_event_key,
)
from wildduck.model.blobs import BlobStats
from wildduck.model.journal import JournalEntry, JournalOp, JournalPage
from wildduck.model.mailboxes import Mailbox, MailboxSnapshot, MailboxSpec, MailboxStatus
from wildduck.model.messages import (
    AppendResult,
    FlagChange,
    FlagMode,
    FlagsAndMoves,
    Json,
    MessageFlags,
    MessageRecord,
    MessageSummary,
    NewMessage,
    PreparedMessage,
    SearchRow,
    StoredPart,
)
from wildduck.model.nudges import Nudge, Resync, user_channel

__all__ = [
    "AUTHLOG_BUCKET", "EVERYTHING", "Address", "AuthEvent", "Listing", "auth_event_key",
    "AppendResult", "BlobStats", "FlagChange", "FlagMode", "FlagsAndMoves", "JournalEntry", "JournalOp",
    "JournalPage", "Json", "Mailbox", "MailboxSnapshot", "MailboxSpec", "MailboxStatus", "MessageFlags",
    "MessageRecord", "MessageSummary", "NewMessage", "Nudge", "PreparedMessage", "Resync", "SearchRow", "StoredPart",
    "User", "user_channel",
]
