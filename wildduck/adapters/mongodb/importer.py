"""The ``Importer`` role on MongoDB (``wildduck migrate``): users, mailboxes and messages as the source store has
them.

Without transactions each call orders its steps so that what it did last says it is done, and a call again after an
interruption completes it: a user's addresses and subscriptions come before the user document, a mailbox's journal
marker and \\Recent watermark before the mailbox document, a batch's blob references and blobs before its messages
(inserted in UID order) and its storage after them. An imported mailbox's journal is one PRUNED marker holding its
HIGHESTMODSEQ and UIDNEXT (``journal.py``): readers behind it resync, appends continue above it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from pymongo.errors import BulkWriteError, DuplicateKeyError

from wildduck.adapters._codec import blob_keys
from wildduck.adapters.mongodb import codec, journal
from wildduck.adapters.mongodb.accounts import _profile
from wildduck.adapters.mongodb.base import Doc, append_above, is_duplicate, ms, next_seq, now_ms
from wildduck.adapters.mongodb.blobs import release_refs, take_refs
from wildduck.adapters.mongodb.journal import JournalRole, head
from wildduck.adapters.mongodb.steps import add_storage, assign_threads, mailbox_doc
from wildduck.errors import AlreadyExists, InvalidInput, NotFound
from wildduck.model import Address, Mailbox, NewMessage, User
from wildduck.ports.importer import ImportedMessage

if TYPE_CHECKING:
    from wildduck.ports.importer import Importer


class ImporterRole(JournalRole):
    """``Importer``: ids, UIDs and MODSEQs kept as given."""

    async def import_user(self, user: User, addresses: Sequence[Address], subscriptions: Sequence[str]) -> bool:
        def tx() -> bool:
            db = self.db
            if db.users.find_one({"_id": user.id}, {"_id": 1}) is not None:
                return False
            if db.users.find_one({"unameview": user.unameview}, {"_id": 1}) is not None:
                raise AlreadyExists(f"username {user.username!r} is taken by another user")
            present = {d["_id"] for d in db.addresses.find({"user": user.id}, {"_id": 1})}  # an earlier attempt's
            inserted: list[str] = []
            for a in addresses:
                if a.id in present:
                    continue
                try:
                    db.addresses.insert_one({"_id": a.id, "user": user.id, "address": a.address, "addrview": a.addrview,
                                             "main": a.main, "created": ms(a.created), **_profile(a.name, a.tags)})
                except DuplicateKeyError:
                    db.addresses.delete_many({"_id": {"$in": inserted}})
                    raise AlreadyExists(f"address {a.address} is taken by another user") from None
                inserted.append(a.id)
            for path in subscriptions:
                try:
                    db.subscriptions.insert_one({"user": user.id, "path": path})
                except DuplicateKeyError:
                    pass
            try:
                db.users.insert_one({"_id": user.id, "username": user.username, "unameview": user.unameview,
                                     "name": user.name, "password_hash": user.password_hash, "quota": user.quota,
                                     "disabled": user.disabled, "created": ms(user.created),
                                     **_profile(None, user.tags)})
            except DuplicateKeyError:
                db.addresses.delete_many({"_id": {"$in": inserted}})
                raise AlreadyExists(f"username {user.username!r} is taken by another user") from None
            return True

        return await self._write(tx)

    async def import_mailbox(self, mailbox: Mailbox) -> bool:
        now = now_ms()

        def tx() -> bool:
            db = self.db
            if db.mailboxes.find_one({"_id": mailbox.id}, {"_id": 1}) is not None:
                return False
            if db.users.find_one({"_id": mailbox.user_id}, {"_id": 1}) is None:
                raise NotFound(f"no user {mailbox.user_id}")
            if db.mailboxes.find_one({"user": mailbox.user_id, "path": mailbox.path}, {"_id": 1}) is not None:
                raise AlreadyExists(f"mailbox {mailbox.path!r} exists")

            def above_validity(top: Doc | None) -> Doc | None:  # later mailboxes of the user get values above it
                if top is not None and int(top["value"]) >= mailbox.uid_validity:
                    return None
                return {"user": mailbox.user_id, "seq": next_seq(top), "value": mailbox.uid_validity, "created": now}

            append_above(db.uidvalidity, {"user": mailbox.user_id}, above_validity)
            steps: list[tuple[str, Doc]] = [("journal", journal.base_entry(
                mailbox.id, now, journal.PRUNED, max(1, mailbox.highest_modseq), mailbox.uid_next))]
            if mailbox.recent_from > 1:
                steps.append(("recent", {"mailbox": mailbox.id, "seq": 1, "value": mailbox.recent_from,
                                         "created": now}))
            for name, doc in steps:
                try:
                    db[name].insert_one(doc)
                except DuplicateKeyError:
                    pass  # written by an earlier attempt
            try:
                db.mailboxes.insert_one(mailbox_doc(mailbox.id, mailbox.user_id, mailbox.path, mailbox.special_use,
                                                    mailbox.uid_validity, mailbox.subscribed, now))
            except DuplicateKeyError:
                raise AlreadyExists(f"mailbox {mailbox.path!r} exists") from None
            return True

        return await self._write(tx)

    async def import_messages(self, mailbox_id: str, messages: Sequence[ImportedMessage]) -> None:
        now = now_ms()
        encoded = {id(m.prepared): codec.Encoded(m.prepared, blob_keys(m.prepared.parts, m.prepared.blobs))
                   for m in messages}

        def tx() -> None:
            db = self.db
            box = db.mailboxes.find_one({"_id": mailbox_id}, {"user": 1})
            h = head(db, mailbox_id) if box is not None else None
            if box is None or h is None:
                raise NotFound(f"no mailbox {mailbox_id}")
            for m in messages:
                if not 0 < m.uid < h.uid_next or not 0 < m.modseq <= h.modseq:
                    raise InvalidInput(f"message UID {m.uid} MODSEQ {m.modseq} does not fit mailbox {mailbox_id} "
                                       f"(UIDNEXT {h.uid_next}, HIGHESTMODSEQ {h.modseq})", "uid")
            user_id: str = box["user"]
            sources = {key: data for m in messages for key, data in m.prepared.blobs.items()}
            with self.locked(mailbox_id):
                take_refs(db, [(b, m.id, user_id, mailbox_id) for m in messages for b in encoded[id(m.prepared)].blobs],
                          sources, now)
                assign_threads(db, user_id, [(m.prepared.message_id, m.prepared.references, m.prepared.base_subject)
                                             for m in messages], now, [m.thread_id for m in messages])
                docs = [{**codec.message_doc(m.id, NewMessage(user_id, mailbox_id, m.prepared, m.flags),
                                             encoded[id(m.prepared)], m.uid, m.modseq, ms(m.internal_date),
                                             m.thread_id, ms(m.saved)), "email": m.email_id}
                        for m in sorted(messages, key=lambda m: m.uid)]
                try:
                    db.messages.insert_many(docs, ordered=True)
                except BulkWriteError as exc:
                    rest = docs[int(exc.details.get("nInserted", 0)):]
                    taken = rest[1:] if is_duplicate(exc) else rest  # a message there already keeps its references
                    release_refs(db, [d["_id"] for d in taken], [b for d in taken for b in d["blobs"]], now)
                    if is_duplicate(exc):
                        raise AlreadyExists(f"message {rest[0]['_id']} (UID {rest[0]['uid']}) exists") from None
                    raise
            with self.locked(f"user:{user_id}"):
                add_storage(db, user_id, [(sum(m.prepared.size for m in messages), None)], now)

        if messages:
            await self._write(tx)


if TYPE_CHECKING:
    def _fills_the_role(s: ImporterRole) -> Importer:
        """mypy checks here that ``ImporterRole`` implements the port."""
        return s
