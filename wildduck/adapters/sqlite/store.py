"""The embedded store: every storage role in one SQLite database (WAL, one writer, a pool of readers).

Each port method is one thread hop and one transaction. A message, its blobs and the references it takes on them
are committed together, so a crash never leaves a half-stored message, an orphaned reference or a missing blob.
Each role lives in its own module (``accounts``, ``mailboxes``, ``messages``, ``journal``, ``search``, ``blobs``,
``maintenance``) on the connections of ``base``; this module composes them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from wildduck.adapters.sqlite.accounts import AccountsRole
from wildduck.adapters.sqlite.blobs import BlobsRole
from wildduck.adapters.sqlite.codec import new_id
from wildduck.adapters.sqlite.importer import ImporterRole
from wildduck.adapters.sqlite.journal import JournalRole
from wildduck.adapters.sqlite.mailboxes import MailboxesRole
from wildduck.adapters.sqlite.maintenance import MaintenanceRole
from wildduck.adapters.sqlite.messages import MessagesRole
from wildduck.adapters.sqlite.search import SearchRole

if TYPE_CHECKING:
    from wildduck.ports import Accounts, BlobStore, Journal, Mailboxes, Maintenance, Messages, SearchIndex


class SqliteStore(AccountsRole, MailboxesRole, MessagesRole, JournalRole, SearchRole, BlobsRole, MaintenanceRole,
                  ImporterRole):
    """Accounts, Mailboxes, Messages, Journal, SearchIndex, BlobStore and Maintenance on one SQLite database file
    (the node's Counters have a file of their own: ``counters.py``).

    Quota policy is the domain's: the store only applies the limit each call passes (``NewMessage.quota``,
    ``copy_messages(quota=...)``). ``close()`` ends the store (it is no role's method).
    """

    def __init__(self, path: Path, *, synchronous: str = "full", readers: int = 4, fsync_all: bool = False) -> None:
        super().__init__(path, synchronous=synchronous, readers=readers, fsync_all=fsync_all)


if TYPE_CHECKING:
    def _fills_every_storage_role(s: SqliteStore) -> tuple[Accounts, Mailboxes, Messages, Journal, SearchIndex,
                                                             BlobStore, Maintenance]:
        """mypy checks here that ``SqliteStore`` implements each port."""
        return s, s, s, s, s, s, s


async def open_sqlite_store(path: str | os.PathLike[str], *, synchronous: str = "full",
                            readers: int = 4, fsync_all: bool = False) -> SqliteStore:
    """Open (creating if needed, migrating if older) the SQLite store at ``path``.

    ``synchronous`` is ``"full"`` (an acknowledged message survives power loss; with ``fsync_all`` every other
    acknowledged write too, without it flag changes and expunges may wait for the next durable commit) or
    ``"normal"``; ``readers`` is the number of reader connections (and threads).
    """
    store = SqliteStore(Path(path), synchronous=synchronous, readers=readers, fsync_all=fsync_all)
    await store.open()
    return store


__all__ = ["SqliteStore", "new_id", "open_sqlite_store"]
