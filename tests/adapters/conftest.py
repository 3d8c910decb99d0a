"""The storage conformance suite runs against every adapter: add a backend to ``STORES`` and ``open_store``."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.model import MailboxSpec, PreparedMessage, StoredPart, User

#: the storage adapters the suite runs against
STORES = ["sqlite"]
MAILBOXES = (MailboxSpec("INBOX"), MailboxSpec("Sent Mail", "\\Sent"), MailboxSpec("Trash", "\\Trash"))


async def open_store(kind: str, directory: Path) -> Any:
    """An empty store of adapter ``kind`` filling every storage role (its data under ``directory``)."""
    if kind == "sqlite":
        return await open_sqlite_store(directory / "store.db")
    raise AssertionError(kind)  # pragma: no cover - future adapters


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
