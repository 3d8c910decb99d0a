"""Steps several roles take (each the one place for its rule): the storage ledger (quota), UIDVALIDITY, mailbox
creation and message removal.

**The storage ledger** replaces a ``storage_used`` counter (``$inc`` is not atomic on every engine): per user a
sequence of entries, unique ``(user, seq)``, each holding the running total ``used``. A change reads the top entry,
checks ``used + size <= quota`` against it and inserts the new total right above it; a duplicate key means another
writer changed the total first, so it reads again. That is the conditional increment, serializable on any engine
with unique indexes. A user's storage is the top entry's total.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from wildduck.adapters._codec import new_id
from wildduck.adapters.mongodb import journal
from wildduck.adapters.mongodb.base import Doc, append_above, is_duplicate, next_seq, top
from wildduck.adapters.mongodb.blobs import release_refs
from wildduck.errors import AlreadyExists
from wildduck.model import JournalOp, MailboxSpec
from wildduck.protocols.mime.headers import message_ids


def storage_used(db: Database[Doc], user_id: str) -> int:
    """The user's storage: the top of its ledger."""
    entry = top(db.storage, {"user": user_id}, "seq")
    return int(entry["used"]) if entry is not None else 0


def add_storage(db: Database[Doc], user_id: str, sizes: Sequence[tuple[int, int | None]],
                now: dt.datetime) -> list[bool]:
    """Add each ``(size, quota)`` in order, if the total stays within its quota (None: no limit), as one ledger
    entry; negative sizes release (never below 0). Returns per size whether it was added."""
    fits: list[bool] = []

    def build(above: Doc | None) -> Doc | None:
        used = int(above["used"]) if above is not None else 0
        fits.clear()
        total = used
        for size, quota in sizes:
            ok = size <= 0 or quota is None or total + size <= quota
            fits.append(ok)
            if ok:
                total = max(0, total + size)
        if total == used:
            return None
        return {"user": user_id, "seq": next_seq(above), "used": total, "created": now}

    append_above(db.storage, {"user": user_id}, build)
    return fits


def release_storage(db: Database[Doc], freed: Counter[str], now: dt.datetime) -> None:
    """Give back ``freed[user]`` bytes of each user's storage."""
    for user_id, size in freed.items():
        if size:
            add_storage(db, user_id, [(-size, None)], now)


def uid_validities(db: Database[Doc], user_id: str, count: int, now: dt.datetime) -> list[int]:
    """UIDVALIDITY values for ``count`` new mailboxes of the user: from the creation time on, but always above every
    earlier one, so a mailbox deleted and created again within a second still gets a new value (RFC 3501
    2.3.1.1)."""
    first = 0

    def build(above: Doc | None) -> Doc:
        nonlocal first
        first = max(int(now.timestamp()), int(above["value"]) + 1 if above is not None else 1) & 0xFFFFFFFF or 1
        return {"user": user_id, "seq": next_seq(above), "value": first + count - 1, "created": now}

    append_above(db.uidvalidity, {"user": user_id}, build)
    return [first + k for k in range(count)]


def mailbox_doc(mid: str, user_id: str, path: str, special_use: str | None, uid_validity: int, subscribed: bool,
                now: dt.datetime) -> Doc:
    """A mailbox document (what only an administrative act changes; UIDNEXT and MODSEQ are its journal's)."""
    return {"_id": mid, "user": user_id, "path": path, "special_use": special_use, "uid_validity": uid_validity,
            "subscribed": subscribed, "created": now}


def insert_mailboxes(db: Database[Doc], user_id: str, specs: Sequence[tuple[str, MailboxSpec]],
                     now: dt.datetime) -> list[Doc]:
    """New mailboxes ``(id, spec)`` of the user: their journal's first entry, then the mailbox (AlreadyExists when a
    path is taken: nothing of that mailbox stays). Subscribed if the name is (an earlier subscription) or the spec
    asks for it."""
    if not specs:
        return []
    validities = uid_validities(db, user_id, len(specs), now)
    paths = [spec.path for _, spec in specs]
    subscribed = {d["path"] for d in db.subscriptions.find({"user": user_id, "path": {"$in": paths}})}
    for _, spec in specs:
        if spec.subscribed and spec.path not in subscribed:
            try:
                db.subscriptions.insert_one({"user": user_id, "path": spec.path})
            except DuplicateKeyError:
                pass
            subscribed.add(spec.path)
    db.journal.insert_many([journal.base_entry(mid, now) for mid, _ in specs])
    docs = [mailbox_doc(mid, user_id, spec.path, spec.special_use, validity, spec.path in subscribed, now)
            for (mid, spec), validity in zip(specs, validities, strict=True)]
    for k, doc in enumerate(docs):
        try:
            db.mailboxes.insert_one(doc)
        except DuplicateKeyError:
            gone = [mid for mid, _ in specs[k:]]
            db.journal.delete_many({"mailbox": {"$in": gone}})
            raise AlreadyExists(f"mailbox {doc['path']!r} exists") from None
    return docs


def claim_removals(db: Database[Doc], mailbox_id: str, rows: list[Doc], now: dt.datetime) -> \
        tuple[list[Doc], list[Doc | None]]:
    """Claim the removal of these messages (their EXPUNGE entries, pending): returns the rows this writer removes
    (another instance may have claimed some first) and the entries to commit once they are gone."""
    entries = journal.reserve(db, mailbox_id, [journal.Change(JournalOp.EXPUNGE, r["uid"], r["_id"]) for r in rows],
                              now)
    return [r for r, e in zip(rows, entries, strict=True) if e is not None], entries


def delete_messages(db: Database[Doc], rows: list[Doc], now: dt.datetime, *, release: bool) -> None:
    """Delete these messages (rows with ``_id``, ``user``, ``size`` and ``blobs``). With ``release`` their blob
    references and storage are given back; without (a MOVE: the copies took them over) only their references go."""
    ids = [r["_id"] for r in rows]
    if not ids:
        return
    db.messages.delete_many({"_id": {"$in": ids}})
    if release:
        release_refs(db, ids, [b for r in rows for b in r["blobs"]], now)
        freed: Counter[str] = Counter()
        for r in rows:
            freed[r["user"]] += int(r["size"])
        release_storage(db, freed, now)
    else:
        db.blob_refs.delete_many({"message": {"$in": ids}})


#: what removing a message reads of it
REMOVAL_FIELDS = {"uid": 1, "size": 1, "user": 1, "blobs": 1}


def remove_messages(db: Database[Doc], mailbox_id: str, uids: Sequence[int], now: dt.datetime) -> list[Doc]:
    """Expunge messages of the mailbox: claim each removal (so a message that two instances expunge at once is
    removed, and released, by one), delete the messages, release their blobs and storage, commit the EXPUNGE
    entries. Returns the rows removed by this call, ascending UID."""
    wanted = sorted(set(uids))
    if not wanted:
        return []
    rows = list(db.messages.find({"mailbox": mailbox_id, "uid": {"$in": wanted}}, REMOVAL_FIELDS, sort=[("uid", 1)]))
    if not rows:
        return []
    rows, entries = claim_removals(db, mailbox_id, rows, now)
    delete_messages(db, rows, now, release=True)
    journal.commit(db, entries)
    return rows


def assign_threads(db: Database[Doc], user_id: str, messages: Sequence[tuple[str | None, Sequence[str], str]],
                   now: dt.datetime, given: Sequence[str] | None = None) -> list[str]:
    """The user's threads for new messages ``(Message-ID, references, base subject)``, in order (the rule of the
    SQLite adapter's ``assign_thread``: the thread of any id a message has or refers to with the same base subject,
    ignoring case, else a new one; a later message may join an earlier one's). Two round trips whatever their
    number: one read of the ids they name, one insert of the ids not recorded yet (unique ``(user, ref, subject)``:
    the first thread recorded for an id and subject keeps it, so instances threading at once agree on every id
    recorded before either). ``given``: the messages have these threads already (imported ones), only their ids
    are recorded."""
    wanted = [(list(dict.fromkeys([*message_ids(mid)[:1], *refs])), subject.casefold())
              for mid, refs, subject in messages]
    every = sorted({ref for ids, _ in wanted for ref in ids})
    known: dict[tuple[str, str], str] = {}
    if every:
        for d in db.thread_refs.find({"user": user_id, "ref": {"$in": every}}, {"ref": 1, "subject": 1, "thread": 1},
                                     sort=[("updated", ASCENDING)]):
            known[d["ref"], d["subject"]] = d["thread"]  # the newest one last: it wins
    threads: list[str] = []
    new: list[Doc] = []
    for k, (ids, subject) in enumerate(wanted):
        found = [known[ref, subject] for ref in ids if (ref, subject) in known]
        thread = given[k] if given is not None else found[0] if found else new_id()
        for ref in ids:
            if (ref, subject) not in known:
                known[ref, subject] = thread
                new.append({"user": user_id, "ref": ref, "subject": subject, "thread": thread, "updated": now})
        threads.append(thread)
    if new:
        try:
            db.thread_refs.insert_many(new, ordered=False)
        except BulkWriteError as exc:
            if not is_duplicate(exc):
                raise
    return threads
