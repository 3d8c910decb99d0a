"""The ``Journal`` role on SQLite: per-mailbox entries in MODSEQ order, pruning remembered per mailbox."""

from __future__ import annotations

import datetime as dt
import sqlite3

import wildduck.adapters.sqlite.codec as codec
from wildduck.adapters.sqlite.base import StoreBase
from wildduck.model import JournalEntry, JournalOp, JournalPage

#: a journal row's operation by its stored name
_OPS = {op.value: op for op in JournalOp}


def _entries(conn: sqlite3.Connection, mailbox_id: str, since: int, upto: int) -> list[JournalEntry]:
    """The entries with ``since < modseq <= upto``, ascending: plain tuples, and each distinct flag list decoded
    once (a page of a thousand flag changes holds a handful of them)."""
    cursor = conn.cursor()
    cursor.row_factory = None
    cursor.execute("SELECT modseq, command, uid, message_id, flags, created FROM journal "
                   "WHERE mailbox_id = ? AND modseq > ? AND modseq <= ? ORDER BY modseq", (mailbox_id, since, upto))
    decoded: dict[str, tuple[str, ...]] = {}
    out = []
    for modseq, command, uid, message_id, text, created in cursor:
        flags = None
        if text is not None:
            flags = decoded.get(text)
            if flags is None:
                flags = decoded[text] = codec.flags_load(text)
        out.append(JournalEntry(mailbox_id, modseq, _OPS[command], uid, message_id, flags, codec.from_ts(created)))
    return out


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
            entries = _entries(conn, mailbox_id, since, box.highest_modseq)
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
