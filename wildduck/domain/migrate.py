"""Copying one deployment's accounts and mail into another (``wildduck migrate``: the single node to a cluster and
back), and verifying the copy.

What is copied keeps what the source chose, so IMAP clients see the same mailboxes: user, address and mailbox ids,
UIDVALIDITY, UIDNEXT and HIGHESTMODSEQ, and each message's id, UID, MODSEQ, flags, internal date, EMAILID, thread
and save date. A message is read as its bytes (recomposed from its skeleton and blobs) and prepared again for the
target (``prepare``: blobs, search text, IMAP forms), then written through the target's ``Importer``.

**Resuming.** Every step skips what the target holds already, by id: a user, a mailbox; in a mailbox, the messages
at or below the highest UID the target has (batches are imported in UID order), so running again after an
interruption continues where it stopped. The source should not change meanwhile (stop its servers, or at least its
deliveries): what changed after its mailbox was copied is not followed, and the verification reports it.

**Verifying** compares the users, addresses, subscriptions and mailboxes, the UID, MODSEQ, flags and dates of
every message, and the SHA-256 of every message's bytes recomposed on each side. Dates are compared to the
millisecond (what MongoDB keeps).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import trio

from wildduck.domain.messages import OpenedMessage, prepare
from wildduck.errors import AlreadyExists, DomainError, NotFound
from wildduck.model import Address, Listing, Mailbox, MessageRecord, MessageSummary, User
from wildduck.ports import Accounts, BlobStore, Mailboxes, Messages
from wildduck.ports.importer import ImportedMessage, Importer

#: messages per import call (and per read of the source)
BATCH = 200
#: bytes of messages per import call at most (a batch holds one message at least, whatever its size)
BATCH_BYTES = 64 << 20
#: users read per listing page
_USERS_PAGE = 100

#: ``(done, total)`` messages, called as the work advances
Progress = Callable[[int, int], None]


class SourceStore(Accounts, Mailboxes, Messages, BlobStore, Protocol):
    """What a migration reads (one storage adapter fills every role)."""


class TargetStore(SourceStore, Importer, Protocol):
    """What a migration writes into (and reads back to verify)."""


class MigrationError(DomainError):
    """The target refuses the copy (a different user has the username, an address is another user's)."""


@dataclass(slots=True)
class MigrationReport:
    """What a run copied and what it found in the target already (skipped)."""

    users: int = 0
    users_skipped: int = 0
    mailboxes: int = 0
    mailboxes_skipped: int = 0
    messages: int = 0
    messages_skipped: int = 0
    #: False when the run stopped early (``max_batches``): running it again continues
    complete: bool = True


async def users_of(store: Accounts) -> AsyncIterator[User]:
    """Every user of ``store``, read a page at a time."""
    after: str | None = None
    while True:
        page = await store.list_users(Listing(after=after, limit=_USERS_PAGE))
        for user in page:
            yield user
        if len(page) < _USERS_PAGE:
            return
        after = page[-1].id


async def count_messages(store: SourceStore) -> int:
    """How many messages ``store`` holds (for the progress bar)."""
    total = 0
    async for user in users_of(store):
        for box in await store.list_mailboxes(user.id):
            total += (await store.mailbox_status(box.id, first_unseen=False)).messages
    return total


def batches(messages: Sequence[MessageSummary], size: int = BATCH, max_bytes: int = BATCH_BYTES) -> list[list[int]]:
    """The UIDs of ``messages`` in runs of at most ``size`` messages and ``max_bytes`` bytes (one message at
    least)."""
    out: list[list[int]] = []
    run: list[int] = []
    used = 0
    for m in messages:
        if run and (len(run) >= size or used + m.size > max_bytes):
            out.append(run)
            run, used = [], 0
        run.append(m.uid)
        used += m.size
    if run:
        out.append(run)
    return out


async def read_batch(store: SourceStore, mailbox_id: str, uids: Sequence[int]) -> list[tuple[MessageRecord, bytes]]:
    """The records of these UIDs with each message's bytes (one read of the records, one of their blobs)."""
    records = await store.get_messages(mailbox_id, uids, content=True)
    blobs = await store.get_blobs({p.blob for r in records for p in r.parts})
    return [(r, OpenedMessage(r, blobs).content()) for r in records]


def _imported(record: MessageRecord, raw: bytes) -> ImportedMessage:
    return ImportedMessage(id=record.id, uid=record.uid, modseq=record.modseq, flags=record.flags,
                           internal_date=record.internal_date, saved=record.saved or record.internal_date,
                           email_id=record.email_id or record.id, thread_id=record.thread_id or record.id,
                           prepared=prepare(raw))


def _prepared(read: list[tuple[MessageRecord, bytes]]) -> list[ImportedMessage]:
    """What the target imports of these messages (parsing them: run in a worker thread)."""
    return [_imported(r, raw) for r, raw in read]


class _Pass:
    """A pass over every message of ``source`` in batches, reporting its progress."""

    def __init__(self, source: SourceStore, target: TargetStore, *, batch: int, batch_bytes: int,
                 progress: Progress | None) -> None:
        self.source = source
        self.target = target
        self.batch = batch
        self.batch_bytes = batch_bytes
        self.progress = progress
        self.total = 0
        self._done = 0

    def _advance(self, n: int) -> None:
        self._done += n
        if self.progress is not None:
            self.progress(self._done, self.total)


class Migration(_Pass):
    """One run of ``migrate``: :meth:`run` copies every user of ``source`` into ``target``."""

    def __init__(self, source: SourceStore, target: TargetStore, *, batch: int = BATCH,
                 batch_bytes: int = BATCH_BYTES, progress: Progress | None = None,
                 max_batches: int | None = None) -> None:
        super().__init__(source, target, batch=batch, batch_bytes=batch_bytes, progress=progress)
        #: stop after this many import calls (a run in parts; tests of resuming)
        self.max_batches = max_batches
        self.report = MigrationReport()
        self._batches = 0

    async def run(self) -> MigrationReport:
        self.total = await count_messages(self.source)
        async for user in users_of(self.source):
            await self.copy_user(user)
            if not self.report.complete:
                break
        return self.report

    async def _import(self, counter: str, what: str, call: Awaitable[bool]) -> None:
        """One import call of a user or mailbox, counted in the report's ``counter`` (created) or
        ``<counter>_skipped`` (there already)."""
        try:
            created = await call
        except AlreadyExists as exc:
            raise MigrationError(f"cannot copy {what}: {exc}") from None
        name = counter if created else f"{counter}_skipped"
        setattr(self.report, name, getattr(self.report, name) + 1)

    async def copy_user(self, user: User) -> None:
        """The user, its addresses and subscriptions, then each mailbox (MigrationError when the target has
        another user of that name, or one of its addresses)."""
        existing = await self.target.find_user(user.unameview)
        if existing is not None and existing.id != user.id:
            raise MigrationError(f"the target has another user named {existing.username!r} (id {existing.id}, the "
                                 f"source's is {user.id}): refusing to overwrite it; delete or rename one of them")
        addresses = await self.source.list_addresses(user.id)
        await self._import("users", f"user {user.username!r}", self.target.import_user(
            user, addresses, await self.source.list_subscriptions(user.id)))
        for box in await self.source.list_mailboxes(user.id):
            await self.copy_mailbox(box)
            if not self.report.complete:
                break
        await self.target.recount_storage(user.id)

    async def copy_mailbox(self, box: Mailbox) -> None:
        """The mailbox, then its messages above the highest UID the target has, a batch per import call."""
        await self._import("mailboxes", f"mailbox {box.path!r} of user {box.user_id}", self.target.import_mailbox(box))
        messages = await self.source.list_messages(box.id)
        newest = await self.target.list_messages(box.id, newest=1)
        copied_up_to = newest[-1].uid if newest else 0
        todo = [m for m in messages if m.uid > copied_up_to]
        self.report.messages_skipped += len(messages) - len(todo)
        self._advance(len(messages) - len(todo))
        for uids in batches(todo, self.batch, self.batch_bytes):
            if self.max_batches is not None and self._batches >= self.max_batches:
                self.report.complete = False
                return
            read = await read_batch(self.source, box.id, uids)
            imported = await trio.to_thread.run_sync(_prepared, read)
            await self.target.import_messages(box.id, imported)
            self._batches += 1
            self.report.messages += len(imported)
            self._advance(len(imported))


async def migrate(source: SourceStore, target: TargetStore, *, batch: int = BATCH, batch_bytes: int = BATCH_BYTES,
                  progress: Progress | None = None, max_batches: int | None = None) -> MigrationReport:
    """Copy every user of ``source`` with its mail into ``target`` (see the module docstring)."""
    return await Migration(source, target, batch=batch, batch_bytes=batch_bytes, progress=progress,
                           max_batches=max_batches).run()


def _ms(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` to the millisecond, in UTC (what every store keeps)."""
    if value is None:
        return None
    value = value.astimezone(dt.UTC) if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
    return value.replace(microsecond=value.microsecond // 1000 * 1000)


def _user_fields(u: User) -> tuple[object, ...]:
    return u.username, u.unameview, u.password_hash, u.quota, u.disabled, u.name, u.tags, _ms(u.created)


def _addresses(found: Sequence[Address]) -> list[tuple[object, ...]]:
    return sorted((a.id, a.address, a.addrview, a.main, a.name, a.tags, _ms(a.created)) for a in found)


def _mailbox_fields(m: Mailbox) -> tuple[object, ...]:
    return m.path, m.special_use, m.uid_validity, m.uid_next, m.highest_modseq, m.subscribed


def _summary_fields(m: MessageSummary) -> tuple[object, ...]:
    return m.id, m.modseq, m.flags, _ms(m.internal_date), m.size, m.thread_id


def _record_fields(r: MessageRecord) -> tuple[object, ...]:
    return r.email_id, r.thread_id, _ms(r.saved)


class Verification(_Pass):
    """Compares ``target`` with ``source``: :meth:`run` returns the differences found (empty: the copy is
    exact)."""

    def __init__(self, source: SourceStore, target: TargetStore, *, batch: int = BATCH,
                 batch_bytes: int = BATCH_BYTES, progress: Progress | None = None) -> None:
        super().__init__(source, target, batch=batch, batch_bytes=batch_bytes, progress=progress)
        self.differences: list[str] = []

    def _differ(self, what: str) -> None:
        self.differences.append(what)

    async def run(self) -> list[str]:
        self.total = await count_messages(self.source)
        async for user in users_of(self.source):
            await self.check_user(user)
        return self.differences

    async def check_user(self, user: User) -> None:
        try:
            copy = await self.target.get_user(user.id)
        except NotFound:
            self._differ(f"user {user.username} ({user.id}) is missing")
            return
        if _user_fields(copy) != _user_fields(user):
            self._differ(f"user {user.username}: {_user_fields(copy)} instead of {_user_fields(user)}")
        theirs = _addresses(await self.target.list_addresses(user.id))
        ours = _addresses(await self.source.list_addresses(user.id))
        if theirs != ours:
            self._differ(f"user {user.username}: addresses {theirs} instead of {ours}")
        subscribed = await self.target.list_subscriptions(user.id)
        if subscribed != await self.source.list_subscriptions(user.id):
            self._differ(f"user {user.username}: subscriptions {subscribed} differ")
        copies = {m.id: m for m in await self.target.list_mailboxes(user.id)}
        for box in await self.source.list_mailboxes(user.id):
            copy_box = copies.get(box.id)
            if copy_box is None:
                self._differ(f"user {user.username}: mailbox {box.path} ({box.id}) is missing")
                continue
            if _mailbox_fields(copy_box) != _mailbox_fields(box):
                self._differ(f"user {user.username}: mailbox {box.path}: (path, special use, UIDVALIDITY, UIDNEXT, "
                             f"HIGHESTMODSEQ, subscribed) {_mailbox_fields(copy_box)} instead of "
                             f"{_mailbox_fields(box)}")
            await self.check_messages(user, box)

    async def check_messages(self, user: User, box: Mailbox) -> None:
        where = f"user {user.username}: mailbox {box.path}"
        ours = await self.source.list_messages(box.id)
        theirs = {m.uid: m for m in await self.target.list_messages(box.id)}
        if len(theirs) != len(ours):
            self._differ(f"{where}: {len(theirs)} messages instead of {len(ours)}")
        both = []
        for m in ours:
            copy = theirs.pop(m.uid, None)
            if copy is None:
                self._differ(f"{where}: UID {m.uid} is missing")
            elif _summary_fields(copy) != _summary_fields(m):
                self._differ(f"{where}: UID {m.uid}: (id, MODSEQ, flags, internal date, size, thread) "
                             f"{_summary_fields(copy)} instead of {_summary_fields(m)}")
            else:
                both.append(m)
        for uid in sorted(theirs):
            self._differ(f"{where}: UID {uid} is not in the source")
        self._advance(len(ours) - len(both))
        for uids in batches(both, self.batch, self.batch_bytes):
            source_side = await read_batch(self.source, box.id, uids)
            target_side = {r.uid: (r, raw) for r, raw in await read_batch(self.target, box.id, uids)}
            for record, raw in source_side:
                copy_record, copy_raw = target_side.get(record.uid, (None, b""))
                if copy_record is None:
                    self._differ(f"{where}: UID {record.uid} is missing")
                elif (digest := hashlib.sha256(copy_raw).hexdigest()) != (want := hashlib.sha256(raw).hexdigest()):
                    self._differ(f"{where}: UID {record.uid}: content differs (SHA-256 {digest} instead of {want})")
                elif _record_fields(copy_record) != _record_fields(record):
                    self._differ(f"{where}: UID {record.uid}: (EMAILID, thread, save date) "
                                 f"{_record_fields(copy_record)} instead of {_record_fields(record)}")
            self._advance(len(uids))


async def verify(source: SourceStore, target: TargetStore, *, batch: int = BATCH, batch_bytes: int = BATCH_BYTES,
                 progress: Progress | None = None) -> list[str]:
    """The differences between ``target`` and ``source`` (see the module docstring); empty when the copy is
    exact."""
    return await Verification(source, target, batch=batch, batch_bytes=batch_bytes, progress=progress).run()
