"""The ``Maintenance`` role on SQLite: the integrity checker and the size on disk."""

from __future__ import annotations

import datetime as dt
import sqlite3

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.adapters.sqlite.mailboxes import SEEN_SQL


class MaintenanceRole(StoreBase):
    """``Maintenance``: integrity and size on disk."""

    async def storage_bytes(self) -> int:
        """Size of the database on disk: the main file plus the write-ahead log."""
        def q(conn: sqlite3.Connection) -> int:
            pages = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
            wal = self.path.with_name(self.path.name + "-wal")
            return int(pages + (wal.stat().st_size if wal.exists() else 0))

        return await self._read(q)

    async def sweep_deleted(self, older_than: dt.datetime) -> int:
        """Nothing to finish: a mailbox's deletion and every append are transactions on one database, so an append
        either stores into the mailbox before it is deleted (and is deleted with it) or finds it gone."""
        return 0

    async def reindex_search(self, limit: int = 1000) -> int:
        """Nothing to re-index: opening the database migrated every stored message's search data (schema v15)."""
        return 0

    async def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): SQLite's integrity check, blob reference counts that disagree
        with the messages, references to missing blobs, messages whose parts and references disagree, mailbox
        counters (messages, unseen, size) that disagree with a recount, search text rows without a message and
        messages without one."""
        def q(conn: sqlite3.Connection) -> list[str]:
            problems = [row[0] for row in conn.execute("PRAGMA integrity_check") if row[0] != "ok"]
            problems += [f"foreign key violation in {row[0]}" for row in conn.execute("PRAGMA foreign_key_check")]
            for row in conn.execute(
                "SELECT b.hash, b.refcount, COUNT(mb.message_id) FROM blobs b "
                "LEFT JOIN message_blobs mb ON mb.blob = b.hash GROUP BY b.hash "
                "HAVING b.refcount != COUNT(mb.message_id)"
            ):
                problems.append(f"blob {row[0]} has refcount {row[1]} but {row[2]} referencing messages")
            for row in conn.execute(
                "SELECT mb.message_id, mb.blob FROM message_blobs mb LEFT JOIN blobs b ON b.hash = mb.blob "
                "WHERE b.hash IS NULL"
            ):
                problems.append(f"message {row[0]} references missing blob {row[1]}")
            for row in conn.execute("SELECT id, parts FROM messages"):
                want = {p.blob for p in codec.parts_load(row["parts"])}
                have = {r[0] for r in conn.execute("SELECT blob FROM message_blobs WHERE message_id = ?", (row["id"],))}
                if want != have:
                    problems.append(f"message {row['id']} parts {sorted(want)} but references {sorted(have)}")
            problems += [
                f"mailbox {row[0]} counts {row[1]} messages, {row[2]} unseen, {row[3]} bytes but holds {row[4]}, "
                f"{row[5]}, {row[6]}"
                for row in conn.execute(
                    "SELECT b.id, b.message_count, b.unseen_count, b.total_size, COUNT(m.uid), "
                    f"COALESCE(SUM(m.uid IS NOT NULL AND NOT {SEEN_SQL}), 0), COALESCE(SUM(m.size), 0) "
                    "FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id GROUP BY b.id "
                    "HAVING b.message_count != COUNT(m.uid) "
                    f"OR b.unseen_count != COALESCE(SUM(m.uid IS NOT NULL AND NOT {SEEN_SQL}), 0) "
                    "OR b.total_size != COALESCE(SUM(m.size), 0)")]
            for row in conn.execute("SELECT m.id FROM messages m LEFT JOIN message_text t ON t.rowid = m.text_id "
                                    "WHERE t.rowid IS NULL"):
                problems.append(f"message {row[0]} has no search text")
            for row in conn.execute("SELECT t.rowid FROM message_text t "
                                    "WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.text_id = t.rowid)"):
                problems.append(f"search text {row[0]} belongs to no message")
            return problems

        return await self._read(q)
