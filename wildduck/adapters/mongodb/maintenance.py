"""The ``Maintenance`` role on MongoDB: the integrity checker, the size on disk, the sweep of deleted mailboxes and
the re-indexing of messages an older version indexed for search."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter, defaultdict

from pymongo.database import Database

from wildduck.adapters._codec import header_block, parts_load, stored_text, unpack
from wildduck.adapters.mongodb import codec, journal
from wildduck.adapters.mongodb.base import Doc, MongoBase, now_ms
from wildduck.adapters.mongodb.blobs import BUCKET, read_blobs, release_refs
from wildduck.adapters.mongodb.journal import PENDING_TIMEOUT
from wildduck.adapters.mongodb.steps import REMOVAL_FIELDS, release_storage, storage_used
from wildduck.errors import NotFound
from wildduck.protocols.mime import compose

#: what re-indexing a message reads of it: its bytes, and its mailbox (whose writers its update waits for)
_REINDEX_PROJECTION = {"mailbox": 1, "size": 1, "skel": 1, "skz": 1, "parts": 1, "tree": 1}
#: documents read at a time while re-indexing (memory holds this many stored messages, and one's blobs)
_REINDEX_BATCH = 20


def _reindexed(d: Doc, db: Database[Doc]) -> Doc | None:
    """The search data of the message ``d`` (read with :data:`_REINDEX_PROJECTION`) as an ingest of its bytes keeps
    it (``codec.search_fields``), or None when its bytes cannot be had (a blob gone: the message was deleted
    meanwhile, or ``check_integrity`` reports it; stored data that does not fit together)."""
    parts = parts_load(d["parts"])
    try:
        skeleton = unpack(d["skel"], d["skz"], int(d["size"]) - sum(p.length for p in parts))
        raw = compose(skeleton, parts, read_blobs(db, [p.blob for p in parts]))
    except (NotFound, ValueError):
        return None
    return codec.search_fields(*stored_text(raw), header_block(skeleton, json.loads(d["tree"])))


class MaintenanceRole(MongoBase):
    """``Maintenance``: integrity (a scan of every message, reference and blob: an administrator's tool) and size."""

    async def storage_bytes(self) -> int:
        """What the server reports the database takes on disk (``dbStats``: storage plus indexes)."""
        def q() -> int:
            stats = self.db.command("dbStats")
            return int(stats.get("storageSize", 0) or stats.get("dataSize", 0)) + int(stats.get("indexSize", 0))

        return await self._read(q)

    async def sweep_deleted(self, older_than: dt.datetime) -> int:
        """Finish the deletions of mailboxes deleted before ``older_than`` (their ``GONE`` journal markers): the
        messages an append racing the deletion on another instance inserted after the deleter removed the
        mailbox's messages are deleted (each by one ``delete_one``, so a message is released once), their blob
        references and storage given back (or, for a deleted user, its leftover ledger removed), then the
        mailbox's journal, marker included. Returns how many messages were removed."""
        def tx() -> int:
            removed = 0
            now = now_ms()
            for mailbox_id in journal.gone_before(self.db, older_than):
                rows = list(self.db.messages.find({"mailbox": mailbox_id}, REMOVAL_FIELDS))
                rows = [r for r in rows if self.db.messages.delete_one({"_id": r["_id"]}).deleted_count]
                release_refs(self.db, [r["_id"] for r in rows], [b for r in rows for b in r["blobs"]], now)
                freed: Counter[str] = Counter()
                for r in rows:
                    freed[r["user"]] += int(r["size"])
                for user_id in list(freed):
                    if self.db.users.find_one({"_id": user_id}, {"_id": 1}) is None:
                        del freed[user_id]
                        for name in ("storage", "thread_refs"):
                            self.db[name].delete_many({"user": user_id})
                release_storage(self.db, freed, now)
                self.db.recent.delete_many({"mailbox": mailbox_id})
                self.db.journal.delete_many({"mailbox": mailbox_id})
                removed += len(rows)
            return removed

        return await self._write(tx)

    async def reindex_search(self, limit: int = 1000) -> int:
        """Derive again the search data of up to ``limit`` messages an older version indexed (``codec.STALE_SEARCH``:
        no :data:`codec.SEARCH_VERSION`), from each one's bytes with the code an ingest runs; returns how many were
        re-indexed (fewer than ``limit`` when no more are left, but for messages whose bytes cannot be had). Each is
        one ``$set`` of its search fields and version, by ``_id`` alone (FerretDB looks up nothing else without
        reading the whole collection): a message's content never changes, so two instances re-indexing one at once
        write the same values, and a later run finds nothing to do (a message moved or deleted meanwhile is not
        written: its id is gone; one copied from a stale one is stale too, and re-indexed in turn)."""
        def tx() -> int:
            done = 0
            for d in self.db.messages.find(codec.STALE_SEARCH, _REINDEX_PROJECTION, limit=limit,
                                           batch_size=_REINDEX_BATCH):
                fields = _reindexed(d, self.db)
                if fields is None:
                    continue
                with self.locked(d["mailbox"]):  # not between this instance's read and write of the message's flags
                    done += self.db.messages.update_one({"_id": d["_id"]}, {"$set": fields}).matched_count
            return done

        return await self._write(tx)

    async def check_integrity(self) -> list[str]:
        """Problems found (empty when consistent): messages whose parts, blob list and references disagree,
        references of no message or to a missing blob, blobs without their GridFS file, messages of no mailbox,
        storage ledgers that disagree with the messages, pending journal entries older than their writer's
        timeout."""
        def q() -> list[str]:
            problems: list[str] = []
            refs: dict[str, set[str]] = defaultdict(set)
            for r in self.db.blob_refs.find({}, {"blob": 1, "message": 1}):
                refs[r["message"]].add(r["blob"])
            boxes = {d["_id"] for d in self.db.mailboxes.find({}, {"_id": 1})}
            sizes: Counter[str] = Counter()
            seen = set()
            for m in self.db.messages.find({}, {"parts": 1, "blobs": 1, "mailbox": 1, "user": 1, "size": 1}):
                seen.add(m["_id"])
                sizes[m["user"]] += int(m["size"])
                want = {p.blob for p in parts_load(m["parts"])}
                if want != set(m["blobs"]) or want != refs.get(m["_id"], set()):
                    problems.append(f"message {m['_id']} parts {sorted(want)} but references "
                                    f"{sorted(refs.get(m['_id'], set()))}")
                if m["mailbox"] not in boxes:
                    problems.append(f"message {m['_id']} is in no mailbox ({m['mailbox']})")
            problems += [f"references of no message {mid}: {sorted(blobs)}" for mid, blobs in refs.items()
                         if mid not in seen]
            entries = {d["_id"]: d["file"] for d in self.db.blobs.find({}, {"file": 1})}
            # (a dead writer's references of no message, reported above, may name blobs it never uploaded)
            problems += [f"message {mid} references missing blob {b}" for mid, blobs in refs.items() for b in blobs
                         if b not in entries and mid in seen]
            files = {d["_id"] for d in self.db[f"{BUCKET}.files"].find({}, {"_id": 1})}
            problems += [f"blob {h} has no GridFS file {f}" for h, f in entries.items() if f not in files]
            for u in self.db.users.find({}, {"_id": 1}):
                used = storage_used(self.db, u["_id"])
                if used != sizes[u["_id"]]:
                    problems.append(f"user {u['_id']} stores {used} bytes by its ledger but {sizes[u['_id']]} "
                                    "in messages")
            stale = now_ms().timestamp() - PENDING_TIMEOUT
            problems += [f"journal entry {d['modseq']} of mailbox {d['mailbox']} pending since {d['created']}"
                         for d in self.db.journal.find({"pend": True}) if d["created"].timestamp() < stale]
            return problems

        return await self._read(q)
