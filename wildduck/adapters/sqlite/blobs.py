"""The ``BlobStore`` role on SQLite: compressed blobs by content hash, reference counted in the message
transactions, collected after a grace period."""

from __future__ import annotations

import datetime as dt
import sqlite3
from collections.abc import Iterable

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.queries import read_blobs
from wildduck.model import BlobStats


class BlobsRole(StoreBase):
    """``BlobStore``: reads, reference counts, statistics and the collector."""

    async def get_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """Decompressed bytes of each blob; NotFound if any is missing (:func:`read_blobs`)."""
        wanted = sorted(set(hashes))
        return await self._read(lambda conn: read_blobs(conn, wanted)) if wanted else {}

    async def blob_refcount(self, blob: str) -> int:
        def q(conn: sqlite3.Connection) -> int:
            row = conn.execute("SELECT refcount FROM blobs WHERE hash = ?", (blob,)).fetchone()
            return int(row[0]) if row else 0

        return await self._read(q)

    async def blob_stats(self) -> BlobStats:
        def q(conn: sqlite3.Connection) -> BlobStats:
            row = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(stored_size), 0), COALESCE(SUM(raw_size), 0), "
                "COALESCE(SUM(refcount = 0), 0) FROM blobs").fetchone()
            return BlobStats(count=row[0], stored_bytes=row[1], raw_bytes=row[2], unreferenced=row[3])

        return await self._read(q)

    async def collect_garbage(self, unreferenced_before: dt.datetime, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` blobs whose count has been zero since before the cutoff; returns how many."""
        cutoff = codec.ts(unreferenced_before)
        return await self._write(lambda conn: conn.execute(
            "DELETE FROM blobs WHERE hash IN (SELECT hash FROM blobs WHERE refcount <= 0 AND changed < ? LIMIT ?)",
            (cutoff, limit)).rowcount)
