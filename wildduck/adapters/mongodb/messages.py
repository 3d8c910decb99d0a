"""The ``Messages`` role on MongoDB: appends, reads, flags, copies, expunges and the \\Recent watermark.

Every change takes its steps in one order, so that nothing is ever visible half-made and a crash leaves at worst
something the maintenance finds (never a message without its blobs):

1. storage: one ledger entry against the quota (``steps.add_storage``);
2. blob references, then the blobs that are missing (``blobs.take_refs``);
3. journal entries, pending (``journal.reserve``: this allocates the UIDs and MODSEQs);
4. the messages themselves (inserted, updated or deleted);
5. the journal entries committed: readers see the change.

A step that fails gives back what the earlier ones took (storage, references, voided entries) before raising.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Sequence

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.database import Database

from wildduck.adapters._codec import apply_flags, blob_keys, new_id, sort_columns
from wildduck.adapters.mongodb import codec, journal
from wildduck.adapters.mongodb.base import Doc, append_above, ms, next_seq, now_ms
from wildduck.adapters.mongodb.blobs import add_refs, release_refs, take_refs
from wildduck.adapters.mongodb.journal import Change, JournalRole, head
from wildduck.adapters.mongodb.steps import (
    add_storage,
    assign_threads,
    claim_removals,
    delete_messages,
    release_storage,
    remove_messages,
)
from wildduck.errors import DomainError, InvalidInput, NotFound, QuotaExceeded, StoreError
from wildduck.model import (
    AppendResult,
    FlagChange,
    FlagMode,
    FlagsAndMoves,
    JournalOp,
    MailboxSnapshot,
    MessageFlags,
    MessageRecord,
    MessageSummary,
    NewMessage,
)
from wildduck.model.mailboxes import MessageTable
from wildduck.ports.messages import SortKeyRow, ThreadKeyRow

#: rounds of a flag change that lost a race on some message to another instance (it re-reads those and retries)
_FLAG_ROUNDS = 100


def _undo(db: Database[Doc], ids: Sequence[str], entries: Sequence[Doc | None], blobs: Sequence[str],
          freed: dict[str, int], now: dt.datetime) -> None:
    """Undo a change that failed after steps 1 and 2 (and maybe 3 and 4): messages written are deleted, pending
    entries voided, references and storage given back."""
    if entries:
        db.messages.delete_many({"_id": {"$in": list(ids)}})
        journal.void(db, entries)
    release_refs(db, ids, blobs, now)
    release_storage(db, Counter(freed), now)


def _set_flags(db: Database[Doc], mailbox_id: str, uids: Sequence[int], mode: FlagMode, given: list[str],
               unchangedsince: int | None, now: dt.datetime) -> FlagChange:
    """Change flags: pending FLAGS entries, each claiming the MODSEQ its message was read at (``journal._claim``:
    of two instances changing one message from the same state, only one gets to write it; the other reads it again
    and retries), then each message updated only if its MODSEQ is still the one read (a message changed or removed
    meanwhile is read again, its entry voided), then commit. StoreError when a message stays claimed by another
    writer for all the rounds (one that died holds its claim until its entry is settled)."""
    changed: list[MessageFlags] = []
    modified: list[int] = []
    todo = sorted(set(uids))
    for attempt in range(_FLAG_ROUNDS):
        if not todo:
            break
        if attempt:
            time.sleep(min(0.05, 0.002 * attempt))  # another writer is between its claim and its write
        rows = list(db.messages.find({"mailbox": mailbox_id, "uid": {"$in": todo}},
                                     {"uid": 1, "flags": 1, "modseq": 1}, sort=[("uid", ASCENDING)]))
        updates: list[tuple[Doc, tuple[str, ...]]] = []
        for r in rows:
            if unchangedsince is not None and r["modseq"] > unchangedsince:
                modified.append(r["uid"])
                continue
            current = tuple(r["flags"])
            new = apply_flags(mode, current, given)
            if new != current:
                updates.append((r, new))
        todo = []
        if not updates:
            break
        entries = journal.reserve(db, mailbox_id, [Change(JournalOp.FLAGS, r["uid"], r["_id"], new, int(r["modseq"]))
                                                   for r, new in updates], now)
        claimed = [(r, new, e) for (r, new), e in zip(updates, entries, strict=True) if e is not None]
        todo = [r["uid"] for (r, _), e in zip(updates, entries, strict=True) if e is None]  # claimed by another
        ops = [UpdateOne({"_id": r["_id"], "modseq": r["modseq"]},
                         {"$set": {"flags": list(new), "seen": "\\Seen" in new, "modseq": e["modseq"]}})
               for r, new, e in claimed]
        won = [True] * len(claimed)
        if ops and db.messages.bulk_write(ops, ordered=False).matched_count != len(ops):  # changed first: which?
            now_at = {d["_id"]: d["modseq"] for d in db.messages.find(
                {"_id": {"$in": [r["_id"] for r, _, _ in claimed]}}, {"modseq": 1})}
            won = [now_at.get(r["_id"]) == e["modseq"] for r, _, e in claimed]
            todo += [r["uid"] for (r, _, _), w in zip(claimed, won, strict=True) if not w and r["_id"] in now_at]
        journal.commit(db, [e for (_, _, e), w in zip(claimed, won, strict=True) if w])
        journal.void(db, [e for (_, _, e), w in zip(claimed, won, strict=True) if not w])
        changed.extend(MessageFlags(r["uid"], new, e["modseq"]) for (r, new, e), w in zip(claimed, won, strict=True)
                       if w)
    if todo:
        raise StoreError(f"flags of messages {todo} of mailbox {mailbox_id} kept changing under this writer")
    return FlagChange(sorted(changed, key=lambda c: c.uid), sorted(modified))


def _uid_query(mailbox_id: str, uids: Sequence[int]) -> Doc | None:
    """The messages of the mailbox with these UIDs (None: no UIDs); a run of UIDs (``1:*``) as a range."""
    wanted = sorted(set(uids))
    if not wanted:
        return None
    if wanted[-1] - wanted[0] == len(wanted) - 1:
        return {"mailbox": mailbox_id, "uid": {"$gte": wanted[0], "$lte": wanted[-1]}}
    return {"mailbox": mailbox_id, "uid": {"$in": wanted}}


class MessagesRole(JournalRole):
    """``Messages``: every change takes the steps of the module docstring."""

    def _owners_of(self, mailbox_ids: Sequence[str]) -> dict[str, tuple[str, int]]:
        """(user id, UIDVALIDITY) of each mailbox that exists (cached: they never change)."""
        unknown = [m for m in set(mailbox_ids) if m not in self._owners]
        if unknown:
            for d in self.db.mailboxes.find({"_id": {"$in": unknown}}, {"user": 1, "uid_validity": 1}):
                self._owners[d["_id"]] = (d["user"], int(d["uid_validity"]))
        return {m: self._owners[m] for m in mailbox_ids if m in self._owners}

    async def append_messages(self, items: Sequence[NewMessage]) -> list[AppendResult | DomainError]:
        """Store the items (see the port and the module docstring): per user one ledger entry for the sizes that
        fit their quotas, the blob references and missing blobs of every stored item, then per mailbox one
        journal reservation, one insert of the messages and one commit."""
        now = now_ms()
        encoded: dict[int, codec.Encoded] = {}
        for item in items:
            if id(item.prepared) not in encoded:
                p = item.prepared
                encoded[id(p)] = codec.Encoded(p, blob_keys(p.parts, p.blobs))

        def tx() -> list[AppendResult | DomainError]:
            outcomes: list[AppendResult | DomainError | None] = [None] * len(items)
            owners = self._owners_of([i.mailbox_id for i in items])
            by_user: dict[str, list[int]] = defaultdict(list)
            for idx, item in enumerate(items):
                owner = owners.get(item.mailbox_id)
                if owner is None or owner[0] != item.user_id:
                    outcomes[idx] = NotFound(f"no mailbox {item.mailbox_id} for user {item.user_id}")
                else:
                    by_user[item.user_id].append(idx)
            by_mailbox: dict[str, list[int]] = defaultdict(list)
            for user_id, indexes in by_user.items():
                with self.locked(f"user:{user_id}"):
                    fits = add_storage(self.db, user_id, [(items[i].prepared.size, items[i].quota) for i in indexes],
                                       now)
                for idx, ok in zip(indexes, fits, strict=True):
                    if ok:
                        by_mailbox[items[idx].mailbox_id].append(idx)
                    else:
                        outcomes[idx] = QuotaExceeded(f"user {user_id} is over quota")
            mids = {idx: new_id() for indexes in by_mailbox.values() for idx in indexes}
            sources = {h: data for idx in mids for h, data in items[idx].prepared.blobs.items()}
            take_refs(self.db, [(b, mids[idx], items[idx].user_id, items[idx].mailbox_id)
                                for idx in mids for b in encoded[id(items[idx].prepared)].blobs], sources, now)
            def undo(indexes: list[int], entries: list[Doc | None]) -> None:
                freed: dict[str, int] = defaultdict(int)
                for i in indexes:
                    freed[items[i].user_id] += items[i].prepared.size
                _undo(self.db, [mids[i] for i in indexes], entries,
                      [b for i in indexes for b in encoded[id(items[i].prepared)].blobs], freed, now)

            threads: dict[tuple[str, int], str] = {}  # the copies of one message for one user share a thread
            for user_id in by_user:
                firsts = list({id(items[i].prepared): items[i].prepared for i in mids
                               if items[i].user_id == user_id}.values())
                assigned = assign_threads(self.db, user_id, [(p.message_id, p.references, p.base_subject)
                                                             for p in firsts], now)
                threads.update({(user_id, id(p)): t for p, t in zip(firsts, assigned, strict=True)})
            boxes = list(by_mailbox.items())
            for k, (mailbox_id, indexes) in enumerate(boxes):
                uid_validity = owners[mailbox_id][1]
                entries: list[Doc | None] = []
                with self.locked(mailbox_id):
                    try:
                        entries = journal.reserve(self.db, mailbox_id, [
                            Change(JournalOp.EXISTS, None, mids[i], tuple(dict.fromkeys(items[i].flags)))
                            for i in indexes], now)
                        self.db.messages.insert_many([
                            codec.message_doc(mids[i], items[i], encoded[id(items[i].prepared)], e["uid"],
                                              e["modseq"], ms(items[i].internal_date),
                                              threads[items[i].user_id, id(items[i].prepared)], now)
                            for i, e in zip(indexes, entries, strict=True) if e is not None], ordered=True)
                    except Exception as exc:
                        undo(indexes, entries)
                        if not isinstance(exc, NotFound):
                            for _, later in boxes[k + 1:]:  # what the mailboxes not reached yet took
                                undo(later, [])
                            raise
                        for i in indexes:
                            outcomes[i] = NotFound(f"no mailbox {mailbox_id}")
                        continue
                    journal.commit(self.db, entries)
                for i, e in zip(indexes, entries, strict=True):
                    assert e is not None
                    outcomes[i] = AppendResult(mids[i], mailbox_id, e["uid"], e["modseq"], uid_validity)
            done = [o for o in outcomes if o is not None]
            assert len(done) == len(items), "every item gets an outcome"
            return done

        return await self._write(tx)

    async def get_message(self, mailbox_id: str, uid: int) -> MessageRecord:
        def q() -> MessageRecord:
            d = self.db.messages.find_one({"mailbox": mailbox_id, "uid": uid})
            if d is None:
                raise NotFound(f"no message {uid} in mailbox {mailbox_id}")
            return codec.record(d)

        return await self._read(q)

    async def get_messages(self, mailbox_id: str, uids: Sequence[int], *,
                           content: bool = True) -> list[MessageRecord]:
        wanted = sorted(set(uids))
        if not wanted:
            return []
        if wanted[-1] - wanted[0] == len(wanted) - 1:  # a run of UIDs (FETCH 1:*): a range, no $in list
            query: Doc = {"mailbox": mailbox_id, "uid": {"$gte": wanted[0], "$lte": wanted[-1]}}
        else:
            query = {"mailbox": mailbox_id, "uid": {"$in": wanted}}
        projection = None if content else codec.META_PROJECTION
        return await self._read(lambda: [codec.record(d) for d in self.db.messages.find(
            query, projection, sort=[("uid", ASCENDING)])])

    async def list_messages(self, mailbox_id: str, *, newest: int | None = None) -> list[MessageSummary]:
        fields = {"uid": 1, "modseq": 1, "flags": 1, "idate": 1, "size": 1, "subject": 1, "thread": 1}

        def q() -> list[MessageSummary]:
            if newest is None:
                return [codec.summary(d) for d in self.db.messages.find({"mailbox": mailbox_id}, fields,
                                                                        sort=[("uid", ASCENDING)])]
            found = list(self.db.messages.find({"mailbox": mailbox_id}, fields, sort=[("uid", DESCENDING)],
                                               limit=newest))
            return [codec.summary(d) for d in reversed(found)]

        return await self._read(q)

    async def sort_keys(self, mailbox_id: str, uids: Sequence[int], *, addresses: bool) -> list[SortKeyRow]:
        """The keys kept with each message (``codec.SORT_FIELD``); for a message stored before they were, computed
        from its subject and ENVELOPE (a second query, for those only)."""
        query = _uid_query(mailbox_id, uids)

        def q() -> list[SortKeyRow]:
            docs = list(self.db.messages.find(query, codec.SORT_KEYS_PROJECTION, sort=[("uid", ASCENDING)]))
            lacking = [d["uid"] for d in docs if codec.SORT_FIELD not in d]
            computed: dict[int, list[str]] = {}
            if lacking:
                computed = {d["uid"]: list(sort_columns(d["subject"], bytes(d["ienv"]) if d.get("ienv") else None))
                            for d in self.db.messages.find({"mailbox": mailbox_id, "uid": {"$in": lacking}},
                                                           {"_id": 0, "uid": 1, "subject": 1, "ienv": 1})}
                for d in docs:
                    if d["uid"] in computed:
                        d[codec.SORT_FIELD] = computed[d["uid"]]
            row = codec.sort_key_row
            return [row(d, d.get(codec.SORT_FIELD) if addresses else None) for d in docs
                    if not lacking or codec.SORT_FIELD in d]

        return await self._read(q) if query is not None else []

    async def sort_order(self, mailbox_id: str, criteria: Sequence[tuple[str, bool]]) -> None:
        """Not here: the collation strings are one array field (FerretDB sorts by no element of it), so the session
        orders the keys :meth:`sort_keys` returns."""
        return None

    async def thread_keys(self, mailbox_id: str, uids: Sequence[int]) -> list[ThreadKeyRow]:
        query = _uid_query(mailbox_id, uids)
        return await self._read(lambda: [codec.thread_key_row(d) for d in self.db.messages.find(
            query, codec.THREAD_KEYS_PROJECTION, sort=[("uid", ASCENDING)])]) if query is not None else []

    async def thread_counts(self, mailbox_id: str, thread_ids: Sequence[str]) -> dict[str, int]:
        """Counted from the matching messages' thread fields (no ``$group``: one indexed query)."""
        wanted = sorted(set(thread_ids))

        def q() -> dict[str, int]:
            found = Counter(d["thread"] for d in self.db.messages.find(
                {"mailbox": mailbox_id, "thread": {"$in": wanted}}, {"thread": 1, "_id": 0}))
            return dict(found)

        return await self._read(q) if wanted else {}

    async def mailbox_snapshot(self, mailbox_id: str) -> MailboxSnapshot:
        """The mailbox as of its journal's watermark and its messages below that watermark's UIDNEXT (a message
        whose append is not committed yet is left out; its EXISTS entry brings it)."""
        def q() -> MailboxSnapshot:
            box = self._mailbox_sync(mailbox_id)
            table = MessageTable()
            for d in self.db.messages.find({"mailbox": mailbox_id, "uid": {"$lt": box.uid_next}},
                                           {"_id": 0, "uid": 1, "modseq": 1, "flags": 1}, sort=[("uid", ASCENDING)]):
                table.append(d["uid"], tuple(d["flags"]), d["modseq"])
            return MailboxSnapshot(box, table)

        return await self._read(q)

    async def set_flags(
        self, mailbox_id: str, uids: Sequence[int], mode: FlagMode, flags: Sequence[str], *,
        unchangedsince: int | None = None,
    ) -> FlagChange:
        """Change flags (see ``_set_flags``); MODSEQs for the changed messages are reserved as one range."""
        mode = FlagMode(mode)
        given = list(dict.fromkeys(flags))
        now = now_ms()

        def tx() -> FlagChange:
            with self.locked(mailbox_id):
                return _set_flags(self.db, mailbox_id, uids, mode, given, unchangedsince, now)

        return await self._write(tx)

    def _copy(self, source_id: str, uids: Sequence[int], target_id: str, move: bool, quota: int | None,
              now: dt.datetime) -> list[tuple[int, int]]:
        """The copy or move of :meth:`copy_messages` (the caller holds the mailboxes' stripes)."""
        owners = self._owners_of([source_id, target_id])
        if source_id not in owners or target_id not in owners:
            raise NotFound(f"no mailbox {source_id if source_id not in owners else target_id}")
        user_id = owners[source_id][0]
        if owners[target_id][0] != user_id:
            raise InvalidInput("messages can only be copied between mailboxes of one user", "mailbox")
        wanted = sorted(set(uids))
        rows = list(self.db.messages.find({"mailbox": source_id, "uid": {"$in": wanted}}, sort=[("uid", ASCENDING)]))
        if not rows:
            return []
        claims: list[Doc | None] = []
        if move:  # the originals are claimed first, so that a concurrent expunge or move does not take them too
            rows, claims = claim_removals(self.db, source_id, rows, now)
            if not rows:  # another instance removed them all first
                return []
        else:
            (fits,) = add_storage(self.db, user_id, [(sum(int(r["size"]) for r in rows), quota)], now)
            if not fits:
                raise QuotaExceeded("copying these messages would exceed the quota")
        mids = [new_id() for _ in rows]
        add_refs(self.db, [(b, mid, user_id, target_id) for r, mid in zip(rows, mids, strict=True) for b in r["blobs"]],
                 now)
        entries: list[Doc | None] = []
        try:
            entries = journal.reserve(self.db, target_id, [Change(JournalOp.EXISTS, None, mid, tuple(r["flags"]))
                                                           for r, mid in zip(rows, mids, strict=True)], now)
            self.db.messages.insert_many([{**r, "_id": mid, "mailbox": target_id, "uid": e["uid"],
                                           "modseq": e["modseq"], "saved": now, "email": r.get("email") or r["_id"]}
                                          for r, mid, e in zip(rows, mids, entries, strict=True) if e is not None],
                                         ordered=True)
        except Exception:
            _undo(self.db, mids, entries, [], {} if move else {user_id: sum(int(r["size"]) for r in rows)}, now)
            journal.void(self.db, claims)
            raise
        journal.commit(self.db, entries)
        if move:  # the copies took over the references and the storage
            delete_messages(self.db, rows, now, release=False)
            journal.commit(self.db, claims)
        return [(r["uid"], e["uid"]) for r, e in zip(rows, entries, strict=True) if e is not None]

    async def copy_messages(self, source_id: str, uids: Sequence[int], target_id: str, *, move: bool = False,
                            quota: int | None = None) -> list[tuple[int, int]]:
        """Copy or move (see the port): one ledger entry against ``quota`` for a copy (QuotaExceeded, nothing
        copied, when it does not fit), the references of the copies, one reservation and one insert in the target,
        then for a move the originals removed (claimed first)."""
        now = now_ms()

        def tx() -> list[tuple[int, int]]:
            with self.locked(source_id, target_id):
                return self._copy(source_id, uids, target_id, move, quota, now)

        return await self._write(tx)

    async def flag_and_move(self, mailbox_id: str, flag_uids: Sequence[int], flags: Sequence[str],
                            move_uids: Sequence[int], target_id: str | None) -> FlagsAndMoves:
        """Flags first (the moved messages too, so that their copies carry them), then the move or the removal.
        Without transactions "whole or not at all" holds per step: a crash between them leaves the flags set and
        the messages where they were (POP3 clients retry the QUIT's effect on their next session)."""
        given = list(dict.fromkeys(flags))
        now = now_ms()

        def tx() -> FlagsAndMoves:
            with self.locked(mailbox_id, *([target_id] if target_id else [])):
                flagged = _set_flags(self.db, mailbox_id, [*flag_uids, *move_uids], FlagMode.ADD, given, None, now)
                if target_id is None:
                    removed = remove_messages(self.db, mailbox_id, move_uids, now)
                    return FlagsAndMoves(flagged, [], [r["uid"] for r in removed])
                return FlagsAndMoves(flagged, self._copy(mailbox_id, move_uids, target_id, True, None, now), [])

        return await self._write(tx)

    async def claim_recent(self, mailbox_id: str, up_to: int) -> int:
        """Raise the \\Recent watermark to ``up_to`` (never past UIDNEXT, never down) and return the one it
        replaced: one entry in the mailbox's claim sequence, unique ``(mailbox, seq)``, built on the top entry, so
        two claims (from any instances) are serialized."""
        now = now_ms()

        def tx() -> int:
            with self.locked(mailbox_id):
                h = head(self.db, mailbox_id)
                if h is None:
                    raise NotFound(f"no mailbox {mailbox_id}")
                previous = 1

                def build(above: Doc | None) -> Doc | None:
                    nonlocal previous
                    previous = int(above["value"]) if above is not None else 1
                    value = max(previous, min(up_to, h.uid_next))
                    if value == previous:
                        return None
                    return {"mailbox": mailbox_id, "seq": next_seq(above), "value": value, "created": now}

                append_above(self.db.recent, {"mailbox": mailbox_id}, build)
                return previous

        return await self._write(tx)

    async def expunge(self, mailbox_id: str, uids: Sequence[int]) -> list[int]:
        now = now_ms()

        def tx() -> list[int]:
            with self.locked(mailbox_id):
                return [r["uid"] for r in remove_messages(self.db, mailbox_id, uids, now)]

        return await self._write(tx)

