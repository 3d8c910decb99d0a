"""The storage conformance suite runs against every adapter: add a backend to ``STORES`` and ``open_store``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.deployments import fresh_database, mongodb_uri
from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.model import MailboxSpec, PreparedMessage, StoredPart, User

#: the storage adapters the suite runs against
STORES = ["sqlite", "mongodb"]
MAILBOXES = (MailboxSpec("INBOX"), MailboxSpec("Sent Mail", "\\Sent"), MailboxSpec("Trash", "\\Trash"))


async def open_store(kind: str, directory: Path, *, database: str | None = None, **options: Any) -> Any:
    """An empty store of adapter ``kind`` filling every storage role (its data under ``directory``; for mongodb a
    fresh database of the session's server, or ``database``)."""
    if kind == "sqlite":
        return await open_sqlite_store(directory / "store.db")
    if kind == "mongodb":
        from wildduck.adapters.mongodb import open_mongo_store

        return await open_mongo_store(mongodb_uri(), database=database or fresh_database(), **options)
    raise AssertionError(kind)  # pragma: no cover - future adapters


async def open_instances(kind: str, directory: Path, count: int = 2) -> list[Any]:
    """``count`` stores of adapter ``kind`` on one database, as ``count`` processes or instances would open it."""
    if kind == "sqlite":
        return [await open_sqlite_store(directory / "shared.db") for _ in range(count)]
    database = fresh_database()
    return [await open_store(kind, directory, database=database) for _ in range(count)]


@pytest.fixture
async def instances(kind: str, tmp_path: Path) -> AsyncIterator[list[Any]]:
    """Two stores of adapter ``kind`` on one database: two instances (closed after the test)."""
    stores = await open_instances(kind, tmp_path)
    try:
        yield stores
    finally:
        for store in stores:
            await store.close()


@pytest.fixture(autouse=True)
def _mongodb_when_asked(request: pytest.FixtureRequest) -> None:
    """Start (or reuse) the session's FerretDB for every test parametrized with the "mongodb" store."""
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "mongodb" in callspec.params.values():
        request.getfixturevalue("ferretdb_server")


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An empty store implementing every storage role (Accounts, Mailboxes, Messages, Journal, SearchIndex,
    BlobStore, Maintenance)."""
    s = await open_store(request.param, tmp_path)
    try:
        yield s
    finally:
        await s.close()


def blob_key(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prepared(body: str = "hello", attachments: tuple[bytes, ...] = (), subject: str = "s") -> PreparedMessage:
    """A message as the MIME layer would prepare it: a skeleton with each attachment cut out."""
    head = f"Subject: {subject}\r\n\r\n{body}\r\n".encode()
    skeleton = head
    parts: list[StoredPart] = []
    blobs: dict[str, bytes] = {}
    offset = len(head)
    for data in attachments:
        key = blob_key(data)
        blobs[key] = data
        parts.append(StoredPart(offset=offset, length=len(data), blob=key, encoding={"kind": "raw"}))
        offset += len(data)
        skeleton += b"\r\n--sep\r\n"
        offset += len(b"\r\n--sep\r\n")
    size = len(skeleton) + sum(len(a) for a in attachments)
    # place the cut bodies right before each separator
    return PreparedMessage(size=size, skeleton=skeleton, parts=parts, blobs=blobs, mime_tree={"hs": 0},
                           envelope=[None] * 10, bodystructure=["text", "plain"], subject=subject,
                           message_id="<m@x>", header_date=None, text=body)


async def make_user(store: Any, name: str = "alice", quota: int | None = None) -> User:
    return await store.create_user(username=name, unameview=name, password_hash="h", quota=quota,
                                   addresses=[(f"{name}@example.com", f"{name}@example.com")], mailboxes=MAILBOXES)
