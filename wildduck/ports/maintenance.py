"""The ``Maintenance`` role: integrity checks and figures for administrators (work that runs under a lease)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol


class Maintenance(Protocol):
    async def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): engine checks, blob reference counts that disagree with the
        messages, references to missing blobs, messages whose parts and references disagree."""
        ...

    async def sweep_deleted(self, older_than: dt.datetime) -> int:
        """Finish deletions of mailboxes deleted before ``older_than``: remove what writes racing a deletion left
        (messages an append on another instance stored into the mailbox after it was emptied), releasing their
        blobs and storage. Returns how many messages were removed. A store whose deletion and appends are
        transactions has none to remove."""
        ...

    async def reindex_search(self, limit: int = 1000) -> int:
        """Derive again, as an ingest of its bytes would, the search data of up to ``limit`` messages an older
        version indexed by older rules; returns how many were re-indexed (fewer than ``limit``: none is left). A
        store whose schema migration re-indexed them (SQLite's v15) has none."""
        ...

    async def storage_bytes(self) -> int:
        """Bytes the store takes on disk."""
        ...
