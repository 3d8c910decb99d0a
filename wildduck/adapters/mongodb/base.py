"""The client, the worker threads, the collections with their indexes and the error mapping shared by every role
of the MongoDB store.

pymongo's synchronous client runs on dedicated worker threads (its asynchronous client is asyncio-only): each port
method is one thread hop that does its whole unit of work (several commands where needed) on one thread. The pool
holds as many connections as there are threads, plus one for the monitor.

**No transactions, no atomic updates.** The store must be correct on MongoDB and on FerretDB (the test server), where
an update is a read-modify-write of the whole document without a lock: two concurrent updates of one document may
lose one (even of different fields), and a filter in an update is checked before the write, not with it (so a
compare-and-set is not atomic either). What holds on both engines is a **unique index**. So everything that several
instances contend for is an insert into a per-key sequence with a unique ``(key, seq)`` index, built right above
the highest entry read, retried on a duplicate key (:func:`append_above`): the journal (MODSEQs and UIDs), the
storage ledger (quota), the \\Recent claims and UIDVALIDITY. Documents that are updated (a message's flags, a
mailbox's path, a pending journal entry) are updated by one writer at a time within an instance (``locked``); a
message's flags across instances by one writer per MODSEQ, the one whose FLAGS journal entry claimed it.
"""

from __future__ import annotations

import datetime as dt
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any, TypeVar

from pymongo import ASCENDING, DESCENDING, IndexModel, MongoClient, WriteConcern
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, OperationFailure, PyMongoError
from pymongo.monitoring import CommandListener

from wildduck import metrics
from wildduck.adapters._threads import WorkerThreads
from wildduck.errors import AlreadyExists, StoreError

T = TypeVar("T")
Doc = dict[str, Any]

#: lock stripes: writes to one mailbox (or one user's storage) within an instance take its stripe
_STRIPES = 64
#: attempts at inserting above a sequence's top before giving up (each failure means another writer got there)
_ATTEMPTS = 10_000

#: the collections and their indexes (``_id`` aside); created at open, idempotently
INDEXES: dict[str, list[IndexModel]] = {
    "users": [IndexModel([("unameview", ASCENDING)], unique=True), IndexModel([("tagsview", ASCENDING)])],
    "addresses": [IndexModel([("addrview", ASCENDING)], unique=True), IndexModel([("user", ASCENDING)]),
                  IndexModel([("tagsview", ASCENDING)])],
    "authlog": [IndexModel([("user", ASCENDING), ("_id", ASCENDING)]),
                IndexModel([("user", ASCENDING), ("key", ASCENDING), ("created", ASCENDING)]),
                IndexModel([("expires", ASCENDING)])],
    "mailboxes": [IndexModel([("user", ASCENDING), ("path", ASCENDING)], unique=True)],
    "subscriptions": [IndexModel([("user", ASCENDING), ("path", ASCENDING)], unique=True)],
    "uidvalidity": [IndexModel([("user", ASCENDING), ("seq", ASCENDING)], unique=True)],
    "storage": [IndexModel([("user", ASCENDING), ("seq", ASCENDING)], unique=True)],
    "recent": [IndexModel([("mailbox", ASCENDING), ("seq", ASCENDING)], unique=True)],
    "journal": [IndexModel([("mailbox", ASCENDING), ("modseq", ASCENDING)], unique=True),
                IndexModel([("claim", ASCENDING)], unique=True, sparse=True),
                IndexModel([("mailbox", ASCENDING), ("k", ASCENDING)]),
                IndexModel([("created", ASCENDING)]), IndexModel([("gone", ASCENDING)], sparse=True)],
    "messages": [IndexModel([("mailbox", ASCENDING), ("uid", ASCENDING)], unique=True),
                 IndexModel([("mailbox", ASCENDING), ("modseq", ASCENDING)]),
                 IndexModel([("user", ASCENDING)]), IndexModel([("mailbox", ASCENDING), ("thread", ASCENDING)]),
                 IndexModel([("sver", ASCENDING)])],  # the messages to re-index for search (codec.STALE_SEARCH)
    "thread_refs": [IndexModel([("user", ASCENDING), ("ref", ASCENDING), ("subject", ASCENDING)], unique=True)],
    "blobs": [IndexModel([("changed", ASCENDING)])],
    "blob_refs": [IndexModel([("blob", ASCENDING), ("message", ASCENDING)], unique=True),
                  IndexModel([("message", ASCENDING)]), IndexModel([("user", ASCENDING)])],
    # GridFS (the standard layout, bucket "attachments"): what GridFSBucket would create on its first upload
    "attachments.files": [IndexModel([("filename", ASCENDING), ("uploadDate", ASCENDING)])],
    "attachments.chunks": [IndexModel([("files_id", ASCENDING), ("n", ASCENDING)], unique=True)],
}


def now_ms() -> dt.datetime:
    """The current UTC time at the millisecond (what BSON keeps), so that what is returned equals what is read."""
    return ms(dt.datetime.now(dt.UTC))


def ms(value: dt.datetime) -> dt.datetime:
    """``value`` as BSON stores it: aware UTC, truncated to the millisecond (a naive datetime is taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    value = value.astimezone(dt.UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def mapped(fn: Callable[[], T]) -> T:
    """Run ``fn``, turning driver errors into ``StoreError`` (a duplicate key into ``AlreadyExists``)."""
    try:
        return fn()
    except DuplicateKeyError as exc:
        raise AlreadyExists(str(exc)) from exc
    except PyMongoError as exc:
        raise StoreError(f"mongodb: {exc}") from exc
    except zlib.error as exc:
        raise StoreError(f"corrupt stored data: {exc}") from exc


def is_unique_violation(exc: PyMongoError) -> bool:
    """A write refused by a unique index: MongoDB's code 11000, or FerretDB's internal error for an update that
    would break one (its SQLite handler reports the constraint, not the code)."""
    if isinstance(exc, DuplicateKeyError):
        return True
    return isinstance(exc, OperationFailure) and "UNIQUE constraint failed" in str(exc)


def is_duplicate(exc: BulkWriteError) -> bool:
    """The bulk write stopped at a duplicate key (and at nothing else)."""
    errors = exc.details.get("writeErrors", [])
    return bool(errors) and all(e.get("code") == 11000 for e in errors)


def top(collection: Collection[Doc], key: Doc, field: str) -> Doc | None:
    """The document of ``key`` with the highest ``field`` (one indexed query)."""
    return collection.find_one(key, sort=[(field, DESCENDING)])


def append_above(collection: Collection[Doc], key: Doc, build: Callable[[Doc | None], Doc | None]) -> \
        tuple[Doc | None, Doc | None]:
    """Insert one document into ``key``'s sequence right above its top: ``build(top)`` makes it (with ``seq`` one
    above the top's, or 1), or returns None when nothing is to be inserted. A duplicate key means another writer
    inserted first: read the new top and build again. Returns (the top it was built on, the inserted document or
    None). Serializable on any engine with unique indexes: an insert succeeds only above the top it was built on."""
    for _ in range(_ATTEMPTS):
        above = top(collection, key, "seq")
        doc = build(above)
        if doc is None:
            return above, None
        try:
            collection.insert_one(doc)
        except DuplicateKeyError:
            continue
        return above, doc
    raise StoreError(f"no free place in the sequence of {key} after {_ATTEMPTS} attempts")


def next_seq(above: Doc | None) -> int:
    """The ``seq`` of the entry above ``above``."""
    return 1 if above is None else int(above["seq"]) + 1


class MongoBase:
    """The database and the threads; every role mixin of ``MongoStore`` builds on it."""

    def __init__(self, uri: str, *, database: str | None = None, threads: int = 8,
                 listeners: Sequence[CommandListener] = ()) -> None:
        self.threads = max(1, threads)
        self._client: MongoClient[Doc] = MongoClient(
            uri, maxPoolSize=self.threads + 1, connect=False, tz_aware=True, appname="wildduck",
            event_listeners=list(listeners), retryWrites=True, serverSelectionTimeoutMS=15_000)
        # every write waits for a majority of the replica set: an acknowledged message survives a failover
        self.db: Database[Doc] = self._client.get_database(
            database or self._client.get_default_database(default="wildduck").name,
            write_concern=WriteConcern("majority"))
        self._workers = WorkerThreads(self.threads, "wildduck-mongo")
        self._stripes = [threading.Lock() for _ in range(_STRIPES)]
        #: mailbox id -> (user id, UIDVALIDITY): they never change, so an append need not read the mailbox again
        self._owners: dict[str, tuple[str, int]] = {}

    def col(self, name: str) -> Collection[Doc]:
        return self.db[name]

    def _open_sync(self) -> None:
        for name, indexes in INDEXES.items():
            collection = self.db[name]
            present = {i["name"] for i in collection.list_indexes()}
            for index in indexes:  # one at a time: FerretDB 1.24 panics on several at once when some exist
                if index.document["name"] not in present:
                    collection.create_indexes([index])

    async def open(self) -> None:
        """Create the collections' indexes (idempotent: several instances may start at once); StoreError when the
        server cannot be reached."""
        try:
            await self._workers.run(mapped, self._open_sync)
        except StoreError as exc:
            raise StoreError(f"cannot open the MongoDB store: {exc}") from None

    async def close(self) -> None:
        """End the threads (after the running calls) and close the client."""
        await self._workers.run(self._client.close)
        self._workers.stop()

    async def _write(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (a write: several commands) on a worker thread. Cancellation waits for it to finish: a write
        that started always completes its steps in order."""
        with metrics.STORE_CALLS.labels("write").time():
            return await self._workers.run(mapped, fn)

    async def _read(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` (a read) on a worker thread; cancellation abandons it (its result is dropped)."""
        with metrics.STORE_CALLS.labels("read").time():
            return await self._workers.run_abandonable(lambda: mapped(fn))

    @contextmanager
    def locked(self, *keys: str) -> Iterator[None]:
        """Hold the stripes of these keys (mailbox ids, ``user:<id>``), taken in one order so that two writers
        never wait for each other. Serializes this instance's writers of one mailbox; other instances are kept
        apart by the unique indexes."""
        with ExitStack() as stack:
            for i in sorted({hash(k) % _STRIPES for k in keys}):
                stack.enter_context(self._stripes[i])
            yield
