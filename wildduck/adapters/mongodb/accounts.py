"""The ``Accounts`` role on MongoDB: users and addresses (unique ``unameview`` and ``addrview`` indexes)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import BulkWriteError, DuplicateKeyError

from wildduck.adapters._codec import new_id
from wildduck.adapters.mongodb import codec
from wildduck.adapters.mongodb.base import Doc, MongoBase, is_duplicate, now_ms
from wildduck.adapters.mongodb.blobs import release_refs
from wildduck.adapters.mongodb.steps import insert_mailboxes, storage_used
from wildduck.errors import AlreadyExists, InvalidInput, NotFound
from wildduck.model import Address, MailboxSpec, User


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
                   "password_hash": password_hash, "quota": quota, "disabled": False, "created": now}
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

    async def list_users(self) -> list[User]:
        return await self._read(lambda: [self._user_sync(d, d["_id"]) for d in
                                         self.db.users.find({}, sort=[("unameview", ASCENDING)])])

    async def _update_user(self, user_id: str, field: str, value: Any) -> None:
        def tx() -> None:
            if not self.db.users.update_one({"_id": user_id}, {"$set": {field: value}}).matched_count:
                raise NotFound(_no_user(user_id))

        await self._write(tx)

    async def set_password(self, user_id: str, password_hash: str) -> None:
        await self._update_user(user_id, "password_hash", password_hash)

    async def set_quota(self, user_id: str, quota: int | None) -> None:
        await self._update_user(user_id, "quota", quota)

    async def set_disabled(self, user_id: str, disabled: bool) -> None:
        await self._update_user(user_id, "disabled", disabled)

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
            self.db.journal.delete_many({"mailbox": {"$in": boxes}})
            self.db.recent.delete_many({"mailbox": {"$in": boxes}})
            refs = Counter(d["blob"] for d in self.db.blob_refs.find({"user": user_id}, {"blob": 1}))
            ids = [d["_id"] for d in self.db.messages.find({"user": user_id}, {"_id": 1})]
            self.db.messages.delete_many({"user": user_id})
            release_refs(self.db, ids, refs, now)
            self.db.blob_refs.delete_many({"user": user_id})
            self.db.storage.delete_many({"user": user_id})
            self.db.subscriptions.delete_many({"user": user_id})
            for box in boxes:
                self._owners.pop(box, None)

        await self._write(tx)

    async def add_address(self, user_id: str, address: str, addrview: str, *, main: bool = False) -> Address:
        def tx() -> Address:
            if self.db.users.find_one({"_id": user_id}, {"_id": 1}) is None:
                raise NotFound(_no_user(user_id))
            doc = {"_id": new_id(), "user": user_id, "address": address, "addrview": addrview, "main": main,
                   "created": now_ms()}
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

    async def list_addresses(self, user_id: str) -> list[Address]:
        return await self._read(lambda: [codec.address(d) for d in self.db.addresses.find(
            {"user": user_id}, sort=[("main", DESCENDING), ("created", ASCENDING), ("addrview", ASCENDING)])])

    async def resolve_address(self, addrview: str) -> Address | None:
        def q() -> Address | None:
            d = self.db.addresses.find_one({"addrview": addrview})
            return codec.address(d) if d is not None else None

        return await self._read(q)
