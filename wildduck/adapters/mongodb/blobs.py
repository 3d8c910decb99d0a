"""The ``BlobStore`` role on MongoDB: attachments in GridFS (bucket ``attachments``), found by SHA-256, counted by
one reference document per (blob, message), collected after a grace period.

* ``blobs`` maps a hash (``_id``) to its GridFS file (an ObjectId of its own upload), sizes, and ``changed``: when a
  reference was last released (the start of the grace period).
* ``blob_refs`` holds one document per (blob, message), unique: the reference count is a count of documents, so
  concurrent COPY and DELETE from several instances keep it exact without any counter.

A writer inserts its references **before** it looks for the blob, and uploads what is missing (a duplicate hash
means another writer's upload won: its own is deleted). The collector deletes the ``blobs`` entry first (only if
still unreferenced and old), then looks at the references again: a writer that came in between either saw the
blob (the entry is put back) or uploads its own; only then is the old file deleted. A live attachment is never lost.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

import gridfs
from bson import Binary, ObjectId
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from wildduck.adapters._codec import pack, unpack
from wildduck.adapters.mongodb.base import Doc, MongoBase, now_ms
from wildduck.errors import NotFound, StoreError
from wildduck.model import BlobStats

BUCKET = "attachments"
#: GridFS chunk size (GridFS's default: 255 KiB)
CHUNK = 255 * 1024


def add_refs(db: Database[Doc], refs: Sequence[tuple[str, str, str, str]], now: dt.datetime) -> None:
    """Insert reference documents ``(blob, message id, user id, mailbox id)`` (their time lets the collector drop
    those of a writer that died before writing its message)."""
    if refs:
        db.blob_refs.insert_many([{"blob": b, "message": m, "user": u, "mailbox": x, "at": now}
                                  for b, m, u, x in refs], ordered=False)


def take_refs(db: Database[Doc], refs: Sequence[tuple[str, str, str, str]], sources: dict[str, bytes],
              now: dt.datetime) -> None:
    """Take references ``(blob, message id, user id, mailbox id)`` and store the blobs that are missing (their bytes
    from ``sources``): before the messages that use them are written."""
    if not refs:
        return
    add_refs(db, refs, now)
    wanted = sorted({b for b, _, _, _ in refs})
    present = {d["_id"] for d in db.blobs.find({"_id": {"$in": wanted}}, {"_id": 1})}
    for blob in wanted:
        if blob not in present:
            raw = sources[blob]
            data, compressed = pack(raw)
            file_id = _upload(db, blob, data, now)
            try:
                db.blobs.insert_one({"_id": blob, "file": file_id, "raw": len(raw), "stored": len(data),
                                     "z": compressed, "changed": now})
            except DuplicateKeyError:
                gridfs.GridFSBucket(db, BUCKET).delete(file_id)  # stored by another writer meanwhile


def _upload(db: Database[Doc], blob: str, data: bytes, now: dt.datetime) -> ObjectId:
    """Write ``data`` as a new GridFS file (the standard layout: its chunks, then its file document) in two
    commands (``GridFSBucket`` would first check the bucket's indexes, made at open)."""
    file_id = ObjectId()
    chunks = [{"files_id": file_id, "n": n, "data": Binary(data[start:start + CHUNK])}
              for n, start in enumerate(range(0, len(data), CHUNK))]
    if chunks:
        db[f"{BUCKET}.chunks"].insert_many(chunks)
    db[f"{BUCKET}.files"].insert_one({"_id": file_id, "length": len(data), "chunkSize": CHUNK, "uploadDate": now,
                                      "filename": blob, "metadata": {"sha256": blob}})
    return file_id


def release_refs(db: Database[Doc], message_ids: Sequence[str], blobs: Iterable[str], now: dt.datetime) -> None:
    """Release the references of these messages (after they are deleted or moved away); ``blobs`` are the blobs
    they referenced, whose grace period starts now."""
    if not message_ids:
        return
    db.blob_refs.delete_many({"message": {"$in": list(message_ids)}})
    released = sorted(set(blobs))
    if released:
        db.blobs.update_many({"_id": {"$in": released}}, {"$set": {"changed": now}})


def read_blobs(db: Database[Doc], hashes: Iterable[str]) -> dict[str, bytes]:
    """Decompressed bytes of each blob (two queries: the entries, then every chunk at once); NotFound if any is
    missing."""
    wanted = sorted(set(hashes))
    if not wanted:
        return {}
    entries = {d["_id"]: d for d in db.blobs.find({"_id": {"$in": wanted}})}
    missing = [h for h in wanted if h not in entries]
    if missing:
        raise NotFound(f"missing blob {missing[0]}")
    pieces: dict[ObjectId, list[bytes]] = {d["file"]: [] for d in entries.values()}
    for chunk in db[f"{BUCKET}.chunks"].find({"files_id": {"$in": list(pieces)}},
                                             sort=[("files_id", ASCENDING), ("n", ASCENDING)]):
        pieces[chunk["files_id"]].append(bytes(chunk["data"]))
    out = {}
    for h, d in entries.items():
        data = b"".join(pieces[d["file"]])
        if len(data) != d["stored"]:
            raise StoreError(f"blob {h}: {len(data)} of {d['stored']} bytes stored")
        out[h] = unpack(data, d["z"], d["raw"])
    return out


class BlobsRole(MongoBase):
    """``BlobStore``: reads, reference counts, statistics and the collector."""

    async def get_blobs(self, hashes: Iterable[str]) -> dict[str, bytes]:
        """Decompressed bytes of each blob (:func:`read_blobs`); NotFound if any is missing."""
        wanted = sorted(set(hashes))
        return await self._read(lambda: read_blobs(self.db, wanted)) if wanted else {}

    async def blob_refcount(self, blob: str) -> int:
        return await self._read(lambda: self.db.blob_refs.count_documents({"blob": blob}))

    async def blob_stats(self) -> BlobStats:
        def q() -> BlobStats:
            entries = list(self.db.blobs.find({}, {"raw": 1, "stored": 1}))
            referenced = set(self.db.blob_refs.distinct("blob"))
            return BlobStats(count=len(entries), stored_bytes=sum(int(d["stored"]) for d in entries),
                             raw_bytes=sum(int(d["raw"]) for d in entries),
                             unreferenced=sum(d["_id"] not in referenced for d in entries))

        return await self._read(q)

    def _drop_stray_refs(self, before: dt.datetime) -> None:
        """Delete references taken before ``before`` by a message that does not exist (its writer died between
        taking them and writing it), releasing their blobs."""
        old = list(self.db.blob_refs.find({"at": {"$lt": before}}, {"blob": 1, "message": 1}))
        if not old:
            return
        present = {d["_id"] for d in self.db.messages.find({"_id": {"$in": sorted({r["message"] for r in old})}},
                                                             {"_id": 1})}
        stray = [r for r in old if r["message"] not in present]
        if stray:
            release_refs(self.db, sorted({r["message"] for r in stray}), [r["blob"] for r in stray], now_ms())

    async def collect_garbage(self, unreferenced_before: dt.datetime, *, limit: int = 1000) -> int:
        """Delete up to ``limit`` blobs without references whose last release is before the cutoff (see the
        module docstring for why a blob referenced meanwhile survives); first the references older than the cutoff
        that belong to no message."""
        def tx() -> int:
            self._drop_stray_refs(unreferenced_before)
            bucket = gridfs.GridFSBucket(self.db, BUCKET)
            old = list(self.db.blobs.find({"changed": {"$lt": unreferenced_before}}))
            referenced = set(self.db.blob_refs.distinct("blob", {"blob": {"$in": [d["_id"] for d in old]}}))
            deleted = 0
            for d in old:
                if deleted >= limit:
                    break
                if d["_id"] in referenced:
                    continue
                gone = self.db.blobs.delete_one({"_id": d["_id"], "changed": {"$lt": unreferenced_before}})
                if not gone.deleted_count:
                    continue
                if self.db.blob_refs.find_one({"blob": d["_id"]}, {"_id": 1}) is not None:
                    try:  # referenced meanwhile: put the entry back (unless a new upload took its place)
                        self.db.blobs.insert_one({**d, "changed": now_ms()})
                        continue
                    except DuplicateKeyError:
                        pass
                else:
                    deleted += 1
                try:
                    bucket.delete(d["file"])
                except gridfs.errors.NoFile:
                    pass
            return deleted

        return await self._write(tx)
