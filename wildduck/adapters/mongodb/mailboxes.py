"""The ``Mailboxes`` role on MongoDB: a user's mailboxes, subscriptions (kept by name) and status.

A mailbox document holds what only changes by an administrative act (path, special use, UIDVALIDITY, the
subscription mirror); UIDNEXT and HIGHESTMODSEQ come from its journal (``journal.head``), the \\Recent watermark
from its claims (``recent``). The counts STATUS reports are recounted from the messages up to the journal's
watermark (one query of three small fields per message): nothing to keep consistent without transactions.
"""

from __future__ import annotations

from pymongo import ASCENDING, UpdateOne
from pymongo.errors import DuplicateKeyError

from wildduck.adapters._codec import new_id
from wildduck.adapters.mongodb import codec, journal
from wildduck.adapters.mongodb.base import Doc, now_ms
from wildduck.adapters.mongodb.journal import JournalRole, head
from wildduck.adapters.mongodb.steps import REMOVAL_FIELDS, delete_messages, insert_mailboxes
from wildduck.errors import AlreadyExists, NotFound
from wildduck.model import Mailbox, MailboxSpec, MailboxStatus


def _order(m: Mailbox) -> tuple[bool, str]:
    return m.path != "INBOX", m.path


class MailboxesRole(JournalRole):
    """``Mailboxes``: paths, subscriptions and status."""

    def _records(self, docs: list[Doc]) -> list[Mailbox]:
        out = []
        for d in docs:
            h = head(self.db, d["_id"])
            if h is not None:  # a mailbox being created or deleted right now is left out
                out.append(codec.mailbox(d, h, self._recent_from(d["_id"])))
        return out

    async def list_mailboxes(self, user_id: str) -> list[Mailbox]:
        """Every mailbox of the user, INBOX first, then by path."""
        return await self._read(lambda: sorted(self._records(list(self.db.mailboxes.find({"user": user_id}))),
                                               key=_order))

    async def get_mailbox(self, mailbox_id: str) -> Mailbox:
        return await self._read(lambda: self._mailbox_sync(mailbox_id))

    async def find_mailbox(self, user_id: str, path: str) -> Mailbox | None:
        def q() -> Mailbox | None:
            d = self.db.mailboxes.find_one({"user": user_id, "path": path})
            found = self._records([d]) if d is not None else []
            return found[0] if found else None

        return await self._read(q)

    async def create_mailbox(self, user_id: str, spec: MailboxSpec) -> Mailbox:
        def tx() -> Mailbox:
            if self.db.users.find_one({"_id": user_id}, {"_id": 1}) is None:
                raise NotFound(f"no user {user_id}")
            if self.db.mailboxes.find_one({"user": user_id, "path": spec.path}, {"_id": 1}) is not None:
                raise AlreadyExists(f"mailbox {spec.path!r} exists")
            (doc,) = insert_mailboxes(self.db, user_id, [(new_id(), spec)], now_ms())
            return self._records([doc])[0]

        return await self._write(tx)

    async def rename_mailbox(self, mailbox_id: str, new_path: str) -> list[Mailbox]:
        """Rename the mailbox and those below it: every path first to a temporary name of its own, then to its
        new name (so names swapped inside the subtree never meet in the unique index); subscriptions follow."""
        def tx() -> list[Mailbox]:
            box = self.db.mailboxes.find_one({"_id": mailbox_id})
            if box is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            old, user_id = box["path"], box["user"]
            everything = list(self.db.mailboxes.find({"user": user_id}, {"path": 1}))
            moves = [(mailbox_id, new_path)] + [(d["_id"], new_path + d["path"][len(old):]) for d in everything
                                                if d["path"].startswith(old + "/")]
            ids = {mid for mid, _ in moves}
            taken = {d["path"]: d["_id"] for d in everything}
            for _, path in moves:
                if path in taken and taken[path] not in ids:
                    raise AlreadyExists(f"mailbox {path!r} exists")
            with self.locked(*ids):
                self.db.mailboxes.bulk_write([UpdateOne({"_id": mid}, {"$set": {"path": f"\x00renaming/{mid}"}})
                                              for mid, _ in moves])
                subscribed = {d["path"] for d in self.db.subscriptions.find({"user": user_id})}
                renamed = {p: new_path + p[len(old):] for p in subscribed if p == old or p.startswith(old + "/")}
                for path in renamed.values():
                    try:
                        self.db.subscriptions.insert_one({"user": user_id, "path": path})
                    except DuplicateKeyError:
                        pass  # a subscription already held by the new name stays as it is
                gone = set(renamed) - set(renamed.values())
                if gone:
                    self.db.subscriptions.delete_many({"user": user_id, "path": {"$in": sorted(gone)}})
                subscribed = (subscribed - gone) | set(renamed.values())
                self.db.mailboxes.bulk_write([UpdateOne({"_id": mid}, {"$set": {"path": path,
                                                                               "subscribed": path in subscribed}})
                                              for mid, path in moves])
            docs = list(self.db.mailboxes.find({"_id": {"$in": list(ids)}}))
            return sorted(self._records(docs), key=lambda m: m.path)

        return await self._write(tx)

    async def delete_mailbox(self, mailbox_id: str) -> None:
        """Delete the mailbox document first (readers say it is gone), then end its journal with a ``GONE``
        marker (changes find it gone: ``journal.close``), then delete its messages, releasing their blobs and
        storage. What an append that raced the deletion still inserts, maintenance sweeps
        (``MaintenanceRole.sweep_deleted``)."""
        now = now_ms()

        def tx() -> None:
            with self.locked(mailbox_id):
                if not self.db.mailboxes.delete_one({"_id": mailbox_id}).deleted_count:
                    raise NotFound(f"no mailbox {mailbox_id}")
                self._owners.pop(mailbox_id, None)
                journal.close(self.db, [mailbox_id], now)
                self.db.recent.delete_many({"mailbox": mailbox_id})
                rows = list(self.db.messages.find({"mailbox": mailbox_id}, REMOVAL_FIELDS))
                delete_messages(self.db, rows, now, release=True)

        await self._write(tx)

    async def set_subscribed(self, user_id: str, path: str, subscribed: bool) -> bool:
        def tx() -> bool:
            if subscribed:
                try:
                    self.db.subscriptions.insert_one({"user": user_id, "path": path})
                    changed = True
                except DuplicateKeyError:
                    changed = False
            else:
                changed = bool(self.db.subscriptions.delete_one({"user": user_id, "path": path}).deleted_count)
            self.db.mailboxes.update_many({"user": user_id, "path": path}, {"$set": {"subscribed": subscribed}})
            return changed

        return await self._write(tx)

    async def list_subscriptions(self, user_id: str) -> list[str]:
        return await self._read(lambda: [d["path"] for d in self.db.subscriptions.find(
            {"user": user_id}, sort=[("path", ASCENDING)])])

    async def mailbox_status(self, mailbox_id: str, *, first_unseen: bool = True) -> MailboxStatus:
        """The mailbox as of its journal's watermark and its messages up to it, recounted (UID, \\Seen, size)."""
        def q() -> MailboxStatus:
            box = self._mailbox_sync(mailbox_id)
            rows = self.db.messages.find({"mailbox": mailbox_id, "uid": {"$lt": box.uid_next}},
                                         {"_id": 0, "uid": 1, "seen": 1, "size": 1}, sort=[("uid", ASCENDING)])
            messages = unseen = recent = size = 0
            first = 0
            for r in rows:
                messages += 1
                size += int(r["size"])
                recent += r["uid"] >= box.recent_from
                if not r["seen"]:
                    unseen += 1
                    first = first or messages
            return MailboxStatus(mailbox=box, messages=messages, unseen=unseen, recent=recent, size=size,
                                 first_unseen=first if first_unseen else None)

        return await self._read(q)
