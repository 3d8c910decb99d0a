"""The ``BlobStore`` role: bodies and attachments by content hash, compressed, reference counted."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Protocol

from wildduck.model import BlobStats


class BlobStore(Protocol):
    """Blobs keyed by lower-case hex SHA-256 of their (uncompressed) bytes.

    References are taken and released by ``Messages`` together with the messages that use them, so a live
    blob is never dropped. The collector deletes a blob only when its count has been zero for the grace period:
    ``collect_garbage(now - grace)`` removes blobs with zero references whose count last changed before that time.
    """

    async def get_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """Decompressed bytes of each blob; raises NotFound if any is missing."""
        ...

    async def blob_refcount(self, blob: str) -> int:
        """Current reference count (0 for unknown blobs)."""
        ...

    async def blob_stats(self) -> BlobStats: ...

    async def collect_garbage(self, unreferenced_before: dt.datetime, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` blobs unreferenced since before the given time; returns how many."""
        ...
