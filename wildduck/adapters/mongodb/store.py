"""The scaled-out store: every storage role on one MongoDB database (GridFS for attachments), shared by any number
of instances.

Each port method is one thread hop doing its steps in order (``messages.py`` says which); there are no
multi-document transactions and no atomic ``$inc`` to rely on (FerretDB, the test server, has neither): what
instances contend for is allocated by inserting into sequences with unique indexes (``base.append_above``,
``journal.reserve``). Each role lives in its own module; this module composes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymongo.monitoring import CommandListener

from wildduck.adapters.mongodb.accounts import AccountsRole
from wildduck.adapters.mongodb.blobs import BlobsRole
from wildduck.adapters.mongodb.importer import ImporterRole
from wildduck.adapters.mongodb.mailboxes import MailboxesRole
from wildduck.adapters.mongodb.maintenance import MaintenanceRole
from wildduck.adapters.mongodb.messages import MessagesRole
from wildduck.adapters.mongodb.search import SearchRole

if TYPE_CHECKING:
    from wildduck.ports import Accounts, BlobStore, Journal, Mailboxes, Maintenance, Messages, SearchIndex


class MongoStore(AccountsRole, MailboxesRole, MessagesRole, SearchRole, BlobsRole, MaintenanceRole, ImporterRole):
    """Accounts, Mailboxes, Messages, Journal, SearchIndex, BlobStore and Maintenance on one MongoDB database.

    Quota policy is the domain's: the store only applies the limit each call passes. ``close()`` ends the store.
    """


if TYPE_CHECKING:
    def _fills_every_storage_role(s: MongoStore) -> tuple[Accounts, Mailboxes, Messages, Journal, SearchIndex,
                                                            BlobStore, Maintenance]:
        """mypy checks here that ``MongoStore`` implements each port."""
        return s, s, s, s, s, s, s


async def open_mongo_store(uri: str, *, database: str | None = None, threads: int = 8,
                           listeners: Sequence[CommandListener] = ()) -> MongoStore:
    """Open the store on ``uri`` (the database named in it, or ``database``, default ``wildduck``), creating the
    collections' indexes if needed. ``threads`` worker threads (and as many pooled connections) carry the calls;
    ``listeners`` are pymongo command listeners (``monitor.CommandCounter``)."""
    store = MongoStore(uri, database=database, threads=threads, listeners=listeners)
    await store.open()
    return store


__all__ = ["MongoStore", "open_mongo_store"]
