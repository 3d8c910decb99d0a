"""The ``Journal`` role on MongoDB, and the journal steps every change takes: the journal is also what allocates
MODSEQs and UIDs.

One document per MODSEQ of a mailbox, unique ``(mailbox, modseq)``, each carrying ``un`` (the mailbox's UIDNEXT
after it). A change reads the top entry and inserts its entries right above it (MODSEQs top+1.., new UIDs from
top's ``un``); a duplicate key means another writer took the place first: read again and retry. So MODSEQs have no
gaps and UIDs ascend with MODSEQs, on any engine with unique indexes (no ``$inc``, no transaction). An EXPUNGE entry
also claims its message (``claim``, ``<mailbox>:<uid>``, a sparse unique index), so two instances expunging one
message release its blobs and storage once; a FLAGS entry claims the message's MODSEQ it was built on
(``<mailbox>:<uid>@<modseq>``), so of two instances changing one message's flags from what each read only one
writes (an update's filter is no compare-and-set on FerretDB: both would, and one's flags would be lost).

**Visibility.** Entries are inserted *pending* (``pend``), then the change is made (messages inserted, updated or
deleted), then they are committed. A reader's watermark stops below the lowest pending entry: a writer whose MODSEQ
is at or below it has committed, so an entry committed late is read next time, never lost. ``k`` orders a mailbox's
entries so that one indexed query finds the lowest pending entry, or the top when none is pending: ``modseq - 2**50``
while pending, its negation once committed (so a commit is one uniform ``$mul`` over every entry of the change). A
pending entry left by a writer that died is settled by the first reader that meets it after
:data:`PENDING_TIMEOUT`: committed if its change is visible, void otherwise.

Markers keep the sequence whole: ``BASE`` (MODSEQ 1, written with the mailbox), ``VOID`` (an aborted change) and
``PRUNED`` (the top entry of a mailbox when pruning removed it: kept for its MODSEQ and UIDNEXT). A reader is told
``pruned`` when the entries above its ``since`` do not start at ``since + 1`` or start with a ``PRUNED`` marker.

**Deletion.** A deleted mailbox's journal ends with a ``GONE`` marker, inserted above its top like any entry
(:func:`close`) and kept until maintenance sweeps the mailbox (``MaintenanceRole.sweep_deleted``): no change can be
reserved above it, so an instance that still takes the mailbox for alive (its owner cache) gets NotFound. (Were the
journal simply deleted, the first append racing the deletion would start it again, and every later one would succeed
into a mailbox that no longer exists.) A writer that reserved below the marker before it went in may still insert
its messages after the deleter removed the mailbox's messages: the sweep removes those, after
:data:`PENDING_TIMEOUT`.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from wildduck.adapters.mongodb import codec
from wildduck.adapters.mongodb.base import Doc, MongoBase, is_duplicate, now_ms, top
from wildduck.adapters.mongodb.codec import Head
from wildduck.errors import NotFound, StoreError
from wildduck.model import JournalEntry, JournalOp, JournalPage, Mailbox

#: ``k`` of a pending entry is its MODSEQ minus this; committed, its negation
_K = 1 << 50
#: seconds after which a pending entry is taken for one whose writer died
PENDING_TIMEOUT = 120.0
BASE, VOID, PRUNED, GONE = "BASE", "VOID", "PRUNED", "GONE"
_MARKERS = (BASE, VOID, PRUNED, GONE)
_ATTEMPTS = 10_000


@dataclass(frozen=True, slots=True)
class Change:
    """One journal entry to write: ``uid`` None for a new message (the allocator gives it the next UID)."""

    op: JournalOp
    uid: int | None
    message: str
    flags: tuple[str, ...] | None = None
    #: for a FLAGS entry, the message's MODSEQ the new flags were built on (claimed: one writer per MODSEQ)
    base: int | None = None


def _claim(mailbox_id: str, c: Change) -> str | None:
    """What the entry of ``c`` claims under the unique ``claim`` index (see the module docstring), or None."""
    if c.op is JournalOp.EXPUNGE:
        return f"{mailbox_id}:{c.uid}"
    return f"{mailbox_id}:{c.uid}@{c.base}" if c.base is not None else None


def _uid_before(d: Doc) -> int:
    """UIDNEXT just below entry ``d``."""
    return int(d["uid"]) if d["op"] == JournalOp.EXISTS else int(d["un"])


def base_entry(mailbox_id: str, now: dt.datetime, op: str = BASE, modseq: int = 1, uid_next: int = 1) -> Doc:
    """The first entry of a new mailbox (MODSEQ 1, UIDNEXT 1), written before the mailbox itself; committed. An
    imported mailbox starts with a PRUNED marker holding its MODSEQ and UIDNEXT instead (``importer.py``)."""
    return {"mailbox": mailbox_id, "modseq": modseq, "k": _K - modseq, "op": op, "uid": 0, "un": uid_next,
            "message": None, "flags": None, "created": now}


def head(db: Database[Doc], mailbox_id: str) -> Head | None:
    """The readers' watermark of the mailbox (None when it has no journal: gone). One query, unless a pending entry
    of a dead writer has to be settled first."""
    for _ in range(_ATTEMPTS):
        d = db.journal.find_one({"mailbox": mailbox_id}, sort=[("k", ASCENDING)])
        if d is None:
            return None
        if not d.get("pend"):
            return Head(int(d["modseq"]), int(d["un"]))
        if not _settle_if_stale(db, d):
            return Head(int(d["modseq"]) - 1, _uid_before(d))
    raise StoreError(f"journal of {mailbox_id} keeps changing")


def reserve(db: Database[Doc], mailbox_id: str, changes: Sequence[Change], now: dt.datetime) -> list[Doc | None]:
    """Insert pending entries for ``changes`` right above the mailbox's top entry; returns each change's entry (its
    ``modseq``, and ``uid`` for a new message), or None for an EXPUNGE whose UID (a FLAGS change whose base MODSEQ)
    another writer claimed first.
    NotFound when the mailbox has no journal (deleted). Entries of one call are in order, mostly in one insert."""
    out: list[Doc | None] = [None] * len(changes)
    todo = list(range(len(changes)))
    for _ in range(_ATTEMPTS):
        if not todo:
            return out
        above = top(db.journal, {"mailbox": mailbox_id}, "modseq")
        if above is None or above["op"] == GONE:
            raise NotFound(f"no mailbox {mailbox_id}")
        modseq, un = int(above["modseq"]), int(above["un"])
        docs = []
        for i in todo:
            c = changes[i]
            modseq += 1
            uid = c.uid
            if uid is None:
                uid, un = un, un + 1
            claim = _claim(mailbox_id, c)
            docs.append({"mailbox": mailbox_id, "modseq": modseq, "op": str(c.op), "uid": uid, "un": un,
                         "k": modseq - _K, "pend": True, "message": c.message,
                         "flags": list(c.flags) if c.flags is not None else None, "created": now,
                         **({"claim": claim} if claim is not None else {})})
        try:
            db.journal.insert_many(docs, ordered=True)
            inserted = len(docs)
        except BulkWriteError as exc:
            if not is_duplicate(exc):
                raise
            inserted = int(exc.details["nInserted"])
        for i, d in zip(todo[:inserted], docs[:inserted], strict=True):
            out[i] = d
        todo = todo[inserted:]
        claim = _claim(mailbox_id, changes[todo[0]]) if todo else None
        if claim is not None and db.journal.find_one({"claim": claim}, {"_id": 1}) is not None:
            todo.pop(0)  # another writer expunges this message (changes its flags): it releases it (writes them)
    raise StoreError(f"no free MODSEQ in mailbox {mailbox_id} after {_ATTEMPTS} attempts")


def close(db: Database[Doc], mailbox_ids: Sequence[str], now: dt.datetime) -> None:
    """End the journals of mailboxes being deleted with a committed ``GONE`` marker above each top (see the module
    docstring); then delete the entries below it. A mailbox without a journal is skipped."""
    for mailbox_id in mailbox_ids:
        for _ in range(_ATTEMPTS):
            above = top(db.journal, {"mailbox": mailbox_id}, "modseq")
            if above is None or above["op"] == GONE:
                break
            modseq = int(above["modseq"]) + 1
            try:
                db.journal.insert_one({"mailbox": mailbox_id, "modseq": modseq, "k": _K - modseq, "op": GONE,
                                       "uid": 0, "un": int(above["un"]), "message": None, "flags": None,
                                       "created": now, "gone": now})
            except DuplicateKeyError:
                continue
            db.journal.delete_many({"mailbox": mailbox_id, "modseq": {"$lt": modseq}})
            break
        else:
            raise StoreError(f"journal of {mailbox_id} keeps changing")


def gone_before(db: Database[Doc], older_than: dt.datetime) -> list[str]:
    """The mailboxes whose ``GONE`` marker was written before ``older_than`` (due for the sweep)."""
    return [d["mailbox"] for d in db.journal.find({"gone": {"$lt": older_than}}, {"mailbox": 1})]  # sparse index


def _finish(db: Database[Doc], entries: Sequence[Doc | None], change: Doc) -> None:
    by_mailbox: dict[str, list[int]] = defaultdict(list)
    for d in entries:
        if d is not None:
            by_mailbox[d["mailbox"]].append(d["modseq"])
    for mailbox_id, modseqs in by_mailbox.items():
        db.journal.update_many({"mailbox": mailbox_id, "modseq": {"$in": modseqs}, "pend": True}, change)


def commit(db: Database[Doc], entries: Sequence[Doc | None]) -> None:
    """Make pending entries visible to readers (the change they record is made): one update per mailbox."""
    _finish(db, entries, {"$unset": {"pend": ""}, "$mul": {"k": -1}})


def void(db: Database[Doc], entries: Sequence[Doc | None]) -> None:
    """Turn pending entries whose change was not made into VOID markers (their MODSEQs stay taken; an EXPUNGE gives
    its claim back)."""
    _finish(db, entries, {"$unset": {"pend": "", "claim": ""}, "$mul": {"k": -1}, "$set": {"op": VOID, "flags": None}})


def _settle_if_stale(db: Database[Doc], d: Doc) -> bool:
    """Settle a pending entry older than :data:`PENDING_TIMEOUT` (its writer is taken for dead): commit it if its
    change is visible in the messages, void it otherwise. False when it is young (its writer is at work)."""
    created: dt.datetime = d["created"]
    if (now_ms() - created).total_seconds() < PENDING_TIMEOUT:
        return False
    message = db.messages.find_one({"_id": d["message"]}, {"modseq": 1, "mailbox": 1})
    if d["op"] == JournalOp.EXISTS:
        done = message is not None and message["mailbox"] == d["mailbox"]
    elif d["op"] == JournalOp.EXPUNGE:
        done = message is None or message["mailbox"] != d["mailbox"]
    else:
        done = message is not None and message["modseq"] == d["modseq"]
    (commit if done else void)(db, [d])
    return True


def entry(d: Doc) -> JournalEntry:
    return JournalEntry(mailbox_id=d["mailbox"], modseq=int(d["modseq"]), op=JournalOp(d["op"]), uid=int(d["uid"]),
                        message_id=d["message"], flags=tuple(d["flags"]) if d["flags"] is not None else None,
                        created=d["created"])


def read_page(db: Database[Doc], mailbox_id: str, since: int, box: Doc | None, recent_from: int) -> JournalPage:
    """The entries above ``since`` up to the watermark (see the module docstring)."""
    if box is None:
        return JournalPage(entries=[], watermark=since, pruned=False, mailbox=None)
    for _ in range(_ATTEMPTS):
        docs = list(db.journal.find({"mailbox": mailbox_id, "modseq": {"$gte": since}}, sort=[("modseq", ASCENDING)]))
        stale = next((d for d in docs if d.get("pend") and _settle_if_stale(db, d)), None)
        if stale is None:
            break
    above = [d for d in docs if d["modseq"] > since]
    entries: list[JournalEntry] = []
    if not docs:  # nothing at or above since: a caller ahead of the journal (or one that was never told it)
        h = head(db, mailbox_id)
        if h is None:
            return JournalPage(entries=[], watermark=since, pruned=False, mailbox=None)
        watermark, uid_next = h.modseq, h.uid_next
    else:
        watermark, uid_next = since, _uid_before(above[0]) if above else int(docs[0]["un"])
        for d in above:
            if d.get("pend"):
                break
            watermark, uid_next = int(d["modseq"]), int(d["un"])
            if d["op"] not in _MARKERS:
                entries.append(entry(d))
    pruned = bool(above) and (above[0]["modseq"] != since + 1 or any(d["op"] == PRUNED for d in above))
    mailbox = codec.mailbox(box, Head(watermark, uid_next), recent_from)
    return JournalPage(entries=entries, watermark=watermark, pruned=pruned, mailbox=mailbox)


class JournalRole(MongoBase):
    """``Journal``: reading with a watermark, pruning that keeps each mailbox's top entry as a marker."""

    def _mailbox_sync(self, mailbox_id: str) -> Mailbox:
        """The mailbox record as of its journal's watermark; NotFound when it is gone."""
        box = self.db.mailboxes.find_one({"_id": mailbox_id})
        h = head(self.db, mailbox_id) if box is not None else None
        if box is None or h is None:
            raise NotFound(f"no mailbox {mailbox_id}")
        return codec.mailbox(box, h, self._recent_from(mailbox_id))

    def _recent_from(self, mailbox_id: str) -> int:
        claim = top(self.db.recent, {"mailbox": mailbox_id}, "seq")
        return int(claim["value"]) if claim is not None else 1

    async def read_journal(self, mailbox_id: str, since: int) -> JournalPage:
        """Entries with ``since < modseq <= watermark`` (three queries: the mailbox, its \\Recent watermark, the
        entries from ``since`` on)."""
        def q() -> JournalPage:
            box = self.db.mailboxes.find_one({"_id": mailbox_id})
            return read_page(self.db, mailbox_id, since, box, self._recent_from(mailbox_id) if box else 1)

        return await self._read(q)

    async def prune_journal(self, older_than: dt.datetime) -> int:
        """Delete entries created before ``older_than``; the top entry of a mailbox becomes a PRUNED marker instead
        (it holds the mailbox's MODSEQ and UIDNEXT). Pending entries stay. Old storage-ledger and \\Recent entries go
        too (each sequence keeps its top). Returns how many change entries were removed."""
        def tx() -> int:
            old = list(self.db.journal.find({"created": {"$lt": older_than}, "pend": {"$exists": False}},
                                            {"mailbox": 1, "modseq": 1, "op": 1}))
            by_mailbox: dict[str, list[Doc]] = defaultdict(list)
            for d in old:
                by_mailbox[d["mailbox"]].append(d)
            removed = 0
            doomed, marked = [], []
            for mailbox_id, docs in by_mailbox.items():
                highest = top(self.db.journal, {"mailbox": mailbox_id}, "modseq")
                for d in docs:
                    real = d["op"] not in _MARKERS
                    if highest is not None and d["_id"] == highest["_id"]:
                        if real:
                            marked.append(d["_id"])
                            removed += 1
                    else:
                        doomed.append(d["_id"])
                        removed += real
            if doomed:
                self.db.journal.delete_many({"_id": {"$in": doomed}})
            if marked:
                self.db.journal.update_many({"_id": {"$in": marked}}, {"$set": {"op": PRUNED, "flags": None}})
            for name, key in (("storage", "user"), ("recent", "mailbox")):
                self._prune_sequences(name, key, older_than)
            return removed

        return await self._write(tx)

    def _prune_sequences(self, name: str, key: str, older_than: dt.datetime) -> None:
        """Delete the entries of sequence collection ``name`` created before ``older_than``, keeping each key's top."""
        collection = self.db[name]
        keys = {d[key] for d in collection.find({"created": {"$lt": older_than}}, {key: 1})}
        for k in keys:
            highest = top(collection, {key: k}, "seq")
            if highest is not None:
                collection.delete_many({key: k, "seq": {"$lt": highest["seq"]}, "created": {"$lt": older_than}})
