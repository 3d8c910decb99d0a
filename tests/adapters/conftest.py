"""The storage conformance suite runs against every adapter: add a backend by adding a parameter here."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from wildduck.adapters.sqlite import open_sqlite_store
from wildduck.domain.models import MailboxSpec, PreparedMessage, StoredPart, User

DEFAULT_QUOTA = 1_000_000
MAILBOXES = (MailboxSpec("INBOX"), MailboxSpec("Sent Mail", "\\Sent"), MailboxSpec("Trash", "\\Trash"))


@pytest.fixture(params=["sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    """An empty store implementing MailStore and BlobStore."""
    if request.param == "sqlite":
        s = await open_sqlite_store(tmp_path / "store.db", default_quota=DEFAULT_QUOTA)
    else:  # pragma: no cover - future adapters
        raise AssertionError(request.param)
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
