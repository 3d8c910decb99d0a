"""The ``Journal`` role on SQLite: per-mailbox entries in MODSEQ order, pruning remembered per mailbox."""

from __future__ import annotations

import datetime as dt
import sqlite3

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.model import JournalEntry, JournalOp, JournalPage


def _entry(r: sqlite3.Row) -> JournalEntry:
    return JournalEntry(mailbox_id=r["mailbox_id"], modseq=r["modseq"], op=JournalOp(r["command"]), uid=r["uid"],
                        message_id=r["message_id"],
                        flags=codec.flags_load(r["flags"]) if r["flags"] is not None else None,
                        created=codec.from_ts(r["created"]))


class JournalRole(StoreBase):
    """``Journal``: reading with a watermark, pruning remembered per mailbox."""

    async def read_journal(self, mailbox_id: str, since: int) -> JournalPage:
        """Entries with ``since < modseq <= watermark`` from one read transaction.

        The watermark is the mailbox's ``highest_modseq`` read in the same snapshot. That is a valid watermark here:
        there is one writer, and a change allocates its MODSEQs and writes its journal entries in the one
        transaction that also raises ``highest_modseq``, so a snapshot that shows a ``highest_modseq`` shows every
        entry at or below it (none is committed later with a lower MODSEQ). ``pruned`` compares ``since`` with the
        highest MODSEQ ``prune_journal`` removed from this mailbox. A deleted mailbox gives ``mailbox=None``.
        """
        def q(conn: sqlite3.Connection) -> JournalPage:
            row = conn.execute("SELECT * FROM mailboxes WHERE id = ?", (mailbox_id,)).fetchone()
            if row is None:
                return JournalPage(entries=[], watermark=since, pruned=False, mailbox=None)
            box = codec.mailbox(row)
            entries = [_entry(r) for r in conn.execute(
                "SELECT * FROM journal WHERE mailbox_id = ? AND modseq > ? AND modseq <= ? ORDER BY modseq",
                (mailbox_id, since, box.highest_modseq))]
            return JournalPage(entries=entries, watermark=box.highest_modseq, pruned=since < row["pruned_modseq"],
                               mailbox=box)

        return await self._read(q)

    async def prune_journal(self, older_than: dt.datetime) -> int:
        """Delete entries created before ``older_than``; each mailbox remembers the highest MODSEQ it lost."""
        cutoff = codec.ts(older_than)

        def tx(conn: sqlite3.Connection) -> int:
            conn.execute(
                "UPDATE mailboxes SET pruned_modseq = max(pruned_modseq, p.modseq) FROM "
                "(SELECT mailbox_id, MAX(modseq) AS modseq FROM journal WHERE created < ? GROUP BY mailbox_id) AS p "
                "WHERE mailboxes.id = p.mailbox_id", (cutoff,))
            return conn.execute("DELETE FROM journal WHERE created < ?", (cutoff,)).rowcount

        return await self._write(tx)
