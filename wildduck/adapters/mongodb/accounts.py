"""The ``Accounts`` role on MongoDB: users and addresses (unique ``unameview`` and ``addrview`` indexes)."""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError, PyMongoError

from wildduck.adapters._codec import new_id
from wildduck.adapters.mongodb import codec, journal
from wildduck.adapters.mongodb.base import (
    Doc,
    MongoBase,
    append_above,
    is_duplicate,
    is_unique_violation,
    ms,
    next_seq,
    now_ms,
)
from wildduck.adapters.mongodb.blobs import release_refs
from wildduck.adapters.mongodb.steps import insert_mailboxes, storage_used
from wildduck.errors import AlreadyExists, InvalidInput, NotFound
from wildduck.model import AUTHLOG_BUCKET, EVERYTHING, Address, AuthEvent, Listing, MailboxSpec, User


def _no_user(user_id: str) -> str:
    return f"no user {user_id}"


class AccountsRole(MongoBase):
    """``Accounts``: users and addresses. A user's storage is the top of its ledger (``steps.storage_used``)."""

    def _user_sync(self, d: Doc | None, user_id: str) -> User:
        if d is None:
            raise NotFound(_no_user(user_id))
        return codec.user(d, storage_used(self.db, d["_id"]))

    async def create_user(
        self,
        *,
        username: str,
        unameview: str,
        password_hash: str,
        quota: int | None,
        addresses: Sequence[tuple[str, str]],
        mailboxes: Sequence[MailboxSpec],
        name: str = "",
        tags: Sequence[str] = (),
    ) -> User:
        """Create the user, its addresses (the first is main) and mailboxes. Without transactions the steps are
        ordered so that a failure leaves nothing: the addresses are inserted first (a taken one stops everything and
        the ones inserted are taken back), then the user (a taken name takes the addresses back), then the
        mailboxes."""
        user_id = new_id()
        now = now_ms()

        def tx() -> User:
            if self.db.users.find_one({"unameview": unameview}, {"_id": 1}) is not None:
                raise AlreadyExists(f"username {username!r} is taken")
            docs = [{"_id": new_id(), "user": user_id, "address": a, "addrview": v, "main": i == 0, "created": now}
                    for i, (a, v) in enumerate(addresses)]
            if docs:
                try:
                    self.db.addresses.insert_many(docs, ordered=True)
                except BulkWriteError as exc:
                    self.db.addresses.delete_many({"_id": {"$in": [d["_id"] for d in docs]}})
                    if is_duplicate(exc):
                        taken = docs[int(exc.details["nInserted"])]["address"]
                        raise AlreadyExists(f"address {taken} is taken") from None
                    raise
            doc = {"_id": user_id, "username": username, "unameview": unameview, "name": name,
                   "password_hash": password_hash, "quota": quota, "disabled": False, "created": now,
                   **_profile(None, tags)}
            try:
                self.db.users.insert_one(doc)
            except DuplicateKeyError:
                self.db.addresses.delete_many({"user": user_id})
                raise AlreadyExists(f"username {username!r} is taken") from None
            insert_mailboxes(self.db, user_id, [(new_id(), spec) for spec in mailboxes], now)
            return codec.user(doc, 0)

        return await self._write(tx)

    async def get_user(self, user_id: str) -> User:
        return await self._read(lambda: self._user_sync(self.db.users.find_one({"_id": user_id}), user_id))

    async def find_user(self, unameview: str) -> User | None:
        def q() -> User | None:
            d = self.db.users.find_one({"unameview": unameview})
            return self._user_sync(d, unameview) if d is not None else None

        return await self._read(q)

    def _user_filter(self, listing: Listing) -> Doc:
        """The users ``listing`` matches: the query in the username or the main address."""
        found = _tag_filter(listing)
        if listing.query:
            pattern = {"$regex": re.escape(listing.query), "$options": "i"}
            owners = [d["user"] for d in self.db.addresses.find({"main": True, "address": pattern}, {"user": 1})]
            found["$or"] = [{"username": pattern}, {"_id": {"$in": owners}}]
        return found

    async def list_users(self, listing: Listing = EVERYTHING) -> list[User]:
        return await self._read(lambda: [self._user_sync(d, d["_id"]) for d in
                                         _page(self.db.users, self._user_filter(listing), listing)])

    async def count_users(self, listing: Listing = EVERYTHING) -> int:
        return await self._read(lambda: self.db.users.count_documents(self._user_filter(listing)))

    async def set_profile(self, user_id: str, *, name: str | None = None, tags: Sequence[str] | None = None) -> None:
        changes = _profile(name, tags)
        if changes:
            await self._update_user(user_id, changes)

    async def recount_storage(self, user_id: str) -> tuple[int, int]:
        """A ledger entry holding the total size of the user's messages (read just before it is inserted: a message
        stored in between, by another instance, is counted again by the next recount)."""
        def tx() -> tuple[int, int]:
            if self.db.users.find_one({"_id": user_id}, {"_id": 1}) is None:
                raise NotFound(_no_user(user_id))
            now = now_ms()
            totals: list[int] = []

            def build(above: Doc | None) -> Doc:
                total = sum(int(d["size"]) for d in self.db.messages.find({"user": user_id}, {"size": 1}))
                totals[:] = [int(above["used"]) if above is not None else 0, total]
                return {"user": user_id, "seq": next_seq(above), "used": total, "created": now}

            append_above(self.db.storage, {"user": user_id}, build)
            return totals[0], totals[1]

        return await self._write(tx)

    async def _update_user(self, user_id: str, changes: Doc) -> None:
        def tx() -> None:
            if not self.db.users.update_one({"_id": user_id}, {"$set": changes}).matched_count:
                raise NotFound(_no_user(user_id))

        await self._write(tx)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._update_user(user_id, {"password_hash": password_hash})

    async def set_quota(self, user_id: str, quota: int | None) -> None:
        await self._update_user(user_id, {"quota": quota})

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._update_user(user_id, {"disabled": disabled})

    async def delete_user(self, user_id: str) -> None:
        """Delete the user first (it can no longer log in or receive), then its addresses, messages (releasing
        their blob references), journals, mailboxes and ledgers."""
        now = now_ms()

        def tx() -> None:
            if not self.db.users.delete_one({"_id": user_id}).deleted_count:
                raise NotFound(_no_user(user_id))
            self.db.addresses.delete_many({"user": user_id})
            boxes = [d["_id"] for d in self.db.mailboxes.find({"user": user_id}, {"_id": 1})]
            self.db.mailboxes.delete_many({"user": user_id})
            journal.close(self.db, boxes, now)  # appends racing the deletion find the mailboxes gone
            self.db.recent.delete_many({"mailbox": {"$in": boxes}})
            refs = Counter(d["blob"] for d in self.db.blob_refs.find({"user": user_id}, {"blob": 1}))
            ids = [d["_id"] for d in self.db.messages.find({"user": user_id}, {"_id": 1})]
            self.db.messages.delete_many({"user": user_id})
            release_refs(self.db, ids, refs, now)
            self.db.blob_refs.delete_many({"user": user_id})
            self.db.storage.delete_many({"user": user_id})
            self.db.subscriptions.delete_many({"user": user_id})
            self.db.thread_refs.delete_many({"user": user_id})
            self.db.authlog.delete_many({"user": user_id})
            for box in boxes:
                self._owners.pop(box, None)

        await self._write(tx)

    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False, name: str = "",
                          tags: Sequence[str] = ()) -> Address:
        def tx() -> Address:
            if self.db.users.find_one({"_id": user_id}, {"_id": 1}) is None:
                raise NotFound(_no_user(user_id))
            doc = {"_id": new_id(), "user": user_id, "address": address, "addrview": addrview, "main": main,
                   "created": now_ms(), **_profile(name, tags)}
            try:
                self.db.addresses.insert_one(doc)
            except DuplicateKeyError:
                raise AlreadyExists(f"address {address} is taken") from None
            if main:
                self.db.addresses.update_many({"user": user_id, "_id": {"$ne": doc["_id"]}}, {"$set": {"main": False}})
            return codec.address(doc)

        return await self._write(tx)

    async def remove_address(self, addrview: str) -> None:
        def tx() -> None:
            d = self.db.addresses.find_one({"addrview": addrview})
            if d is None:
                raise NotFound(f"no address {addrview}")
            if d["main"]:
                raise InvalidInput(f"{addrview} is the main address of its user and cannot be removed", "address")
            self.db.addresses.delete_one({"_id": d["_id"]})

        await self._write(tx)

    async def get_address(self, address_id: str) -> Address:
        def q() -> Address:
            d = self.db.addresses.find_one({"_id": address_id})
            if d is None:
                raise NotFound(f"no address {address_id}")
            return codec.address(d)

        return await self._read(q)

    async def update_address(self, address_id: str, *, address: tuple[str, str] | None = None,
                             name: str | None = None, main: bool | None = None,
                             tags: Sequence[str] | None = None) -> Address:
        """The new main address is set before the others stop being main (a reader may see two for a moment,
        never none)."""
        if main is False:
            raise InvalidInput("an address cannot stop being main: make another address main instead", "main")
        changes = _profile(name, tags)
        if address is not None:
            changes.update(address=address[0], addrview=address[1])
        if main:
            changes["main"] = True

        def tx() -> Address:
            d = self.db.addresses.find_one({"_id": address_id})
            if d is None:
                raise NotFound(f"no address {address_id}")
            if changes:
                try:
                    self.db.addresses.update_one({"_id": address_id}, {"$set": changes})
                except PyMongoError as exc:
                    if is_unique_violation(exc):
                        raise AlreadyExists(f"address {changes['address']} is taken") from None
                    raise
            if main:
                self.db.addresses.update_many({"user": d["user"], "_id": {"$ne": address_id}},
                                              {"$set": {"main": False}})
            return codec.address({**d, **changes})

        return await self._write(tx)

    async def list_all_addresses(self, listing: Listing = EVERYTHING) -> list[Address]:
        return await self._read(lambda: [codec.address(d) for d in
                                         _page(self.db.addresses, _address_filter(listing), listing)])

    async def count_addresses(self, listing: Listing = EVERYTHING) -> int:
        return await self._read(lambda: self.db.addresses.count_documents(_address_filter(listing)))

    async def record_auth(self, events: Sequence[AuthEvent]) -> None:
        """Merged with ``$inc`` (two instances merging into one entry at the same moment may, on an engine whose
        ``$inc`` is not atomic, count one attempt less; the log is an audit aid, never a limit)."""
        def tx() -> None:
            known = {d["_id"] for d in self.db.users.find({"_id": {"$in": list({e.user_id for e in events})}},
                                                          {"_id": 1})}
            for e in events:
                if e.user_id not in known:
                    continue
                found = self.db.authlog.find_one(
                    {"user": e.user_id, "key": e.key, "created": {"$gte": ms(e.created - AUTHLOG_BUCKET)}},
                    {"_id": 1}, sort=[("created", DESCENDING)])
                if found is not None:
                    self.db.authlog.update_one({"_id": found["_id"]},
                                               {"$inc": {"events": e.events}, "$max": {"last": ms(e.last)}})
                else:
                    self.db.authlog.insert_one({
                        "_id": new_id(), "user": e.user_id, "key": e.key, "action": e.action, "result": e.result,
                        "protocol": e.protocol, "ip": e.ip, "source": e.source, "created": ms(e.created),
                        "last": ms(e.last), "events": e.events, "expires": ms(e.expires)})

        if events:
            await self._write(tx)

    async def auth_log(self, user_id: str, listing: Listing = EVERYTHING, *, action: str | None = None,
                       ip: str | None = None) -> list[AuthEvent]:
        return await self._read(lambda: [codec.auth_event(d) for d in _page(
            self.db.authlog, _auth_filter(user_id, action, ip), listing, descending=True)])

    async def count_auth(self, user_id: str, *, action: str | None = None, ip: str | None = None) -> int:
        return await self._read(lambda: self.db.authlog.count_documents(_auth_filter(user_id, action, ip)))

    async def get_auth_event(self, user_id: str, event_id: str) -> AuthEvent:
        def q() -> AuthEvent:
            d = self.db.authlog.find_one({"_id": event_id, "user": user_id})
            if d is None:
                raise NotFound(f"no event {event_id}")
            return codec.auth_event(d)

        return await self._read(q)

    async def prune_auth(self, now: dt.datetime) -> int:
        return await self._write(lambda: self.db.authlog.delete_many({"expires": {"$lt": ms(now)}}).deleted_count)

    async def list_addresses(self, user_id: str) -> list[Address]:
        return await self._read(lambda: [codec.address(d) for d in self.db.addresses.find(
            {"user": user_id}, sort=[("main", DESCENDING), ("created", ASCENDING), ("addrview", ASCENDING)])])

    async def resolve_address(self, addrview: str) -> Address | None:
        def q() -> Address | None:
            d = self.db.addresses.find_one({"addrview": addrview})
            return codec.address(d) if d is not None else None

        return await self._read(q)


def _profile(name: str | None, tags: Sequence[str] | None) -> Doc:
    changes: Doc = {}
    if name is not None:
        changes["name"] = name
    if tags is not None:
        changes["tags"] = list(tags)
        changes["tagsview"] = sorted({t.lower() for t in tags})
    return changes


def _tag_filter(listing: Listing) -> Doc:
    found: Doc = {}
    conditions: list[Doc] = []
    if listing.tags:
        conditions.append({"tagsview": {"$in": list(listing.tags)}})
    conditions += [{"tagsview": tag} for tag in listing.required_tags]
    if conditions:
        found["$and"] = conditions
    return found


def _address_filter(listing: Listing) -> Doc:
    found = _tag_filter(listing)
    if listing.query:
        found["address"] = {"$regex": re.escape(listing.query.lower())}
    return found


def _auth_filter(user_id: str, action: str | None, ip: str | None) -> Doc:
    found: Doc = {"user": user_id}
    if action is not None:
        found["action"] = action
    if ip is not None:
        found["ip"] = ip
    return found


def _page(collection: Any, found: Doc, listing: Listing, *, descending: bool = False) -> list[Doc]:
    """Documents matching ``found`` in listing order (``_id`` ascending, or descending), paged by the listing's
    keyset (see the SQLite adapter's ``_page``: the same contract)."""
    bounds: Doc = {}
    if listing.after is not None:
        bounds["$lt" if descending else "$gt"] = listing.after
    if listing.before is not None:
        bounds["$gt" if descending else "$lt"] = listing.before
    query = {"$and": [found, {"_id": bounds}]} if bounds else found
    forward = listing.before is None
    ascending = descending != forward
    cursor = collection.find(query, sort=[("_id", ASCENDING if ascending else DESCENDING)])
    if listing.limit is not None:
        cursor = cursor.limit(int(listing.limit))
    docs = list(cursor)
    return docs if forward else docs[::-1]
