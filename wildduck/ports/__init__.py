"""Storage and messaging roles as ``typing.Protocol``s; adapters in ``wildduck.adapters`` implement them.

Every method is ``async`` and is one unit of work (one thread hop and one transaction in the SQLite adapter).
Cancellation: a write that has started is never abandoned half-way; a cancelled caller may not learn its outcome,
but the store is always consistent. Reads may be abandoned.

The conformance suite (``tests/adapters/``) is the definition of correct for every adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from wildduck.ports.accounts import Accounts
from wildduck.ports.blobstore import BlobStore
from wildduck.ports.counters import Counters
from wildduck.ports.journal import Journal
from wildduck.ports.mailboxes import Mailboxes
from wildduck.ports.maintenance import Maintenance
from wildduck.ports.messages import Messages
from wildduck.ports.pubsub import PubSub
from wildduck.ports.search_index import SearchIndex


@dataclass(frozen=True, slots=True)
class Backends:
    """The composed roles the domain services run on (``app.py`` builds it from the configuration). One adapter
    object may fill several roles (the SQLite store fills every storage role)."""

    accounts: Accounts
    mailboxes: Mailboxes
    messages: Messages
    journal: Journal
    search: SearchIndex
    blobs: BlobStore
    maintenance: Maintenance
    counters: Counters
    pubsub: PubSub


__all__ = ["Accounts", "Backends", "BlobStore", "Counters", "Journal", "Mailboxes", "Maintenance", "Messages",
           "PubSub", "SearchIndex"]
