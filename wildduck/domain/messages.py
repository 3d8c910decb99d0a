"""Messages: ingest (shared by APPEND, delivery and the API), flags, \\Seen, copy/move, expunge, reading content
back, and the quota rule. Every write publishes its nudge here and nowhere else.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import trio

from wildduck.errors import DomainError, InvalidInput, MessageTooLarge, NotFound, QuotaExceeded
from wildduck.model import (
    AppendResult,
    FlagChange,
    FlagMode,
    FlagsAndMoves,
    Mailbox,
    MessageRecord,
    MessageSummary,
    NewMessage,
    Nudge,
    PreparedMessage,
    StoredPart,
    User,
    user_channel,
)
from wildduck.ports import Accounts, BlobStore, Messages, PubSub
from wildduck.ports.messages import SortKeyRow, ThreadKeyRow
from wildduck.protocols import mime
from wildduck.protocols.mime import basesubject
from wildduck.protocols.mime.lines import crlf

#: CPU-bound parsing runs in worker threads, at most this many at once
_parse_limiter = trio.CapacityLimiter(2)
#: messages up to this size are parsed on the event loop (a thread hop costs more than parsing them)
INLINE_PARSE_LIMIT = 16 * 1024
SEEN = "\\Seen"
#: a flag no client may set: \\Recent belongs to the server
RECENT = "\\Recent"


def prepare(raw: bytes, *, inline_text_limit: int = mime.DEFAULT_INLINE_TEXT_LIMIT) -> PreparedMessage:
    """Parse ``raw`` and split it for storage (CPU-bound; big messages go to a worker thread, see
    :func:`prepare_soon`). Bare LFs become CRLF first (LMTP refuses them; an IMAP APPEND may carry them)."""
    a = mime.analyze(crlf(raw), inline_text_limit=inline_text_limit)
    base = basesubject.extract(a.subject)
    return PreparedMessage(
        size=a.size, skeleton=a.skeleton,
        parts=[StoredPart(offset=p.offset, length=p.length, blob=p.blob, encoding=p.encoding) for p in a.parts],
        blobs=a.blobs, mime_tree=a.tree, envelope=a.envelope, bodystructure=a.bodystructure, subject=a.subject,
        message_id=a.message_id, header_date=a.header_date, text=a.text, has_attachments=a.has_attachments,
        header_text=a.header_text, references=a.references, base_subject=base.text,
        subject_reply=base.reply_or_forward,
    )


async def prepare_soon(raw: bytes) -> PreparedMessage:
    """:func:`prepare` for async callers: small messages at once, bigger ones in a worker thread."""
    if len(raw) <= INLINE_PARSE_LIMIT:
        return prepare(raw)
    return await trio.to_thread.run_sync(prepare, raw, limiter=_parse_limiter)


@dataclass(frozen=True, slots=True)
class Quota:
    used: int
    limit: int


@dataclass(frozen=True, slots=True)
class OpenedMessage:
    """A stored message with the blobs it takes to recompose it (IMAP FETCH, POP3 RETR/TOP, API download, CLI
    export all read messages through this); ``composed``, when set, is the message already recomposed (then
    ``record`` may be a record without content and ``blobs`` empty)."""

    record: MessageRecord
    blobs: dict[str, bytes]
    composed: bytes | None = None

    def get_blob(self, key: str) -> bytes:
        return self.blobs[key]

    def content(self) -> bytes:
        """The message, byte for byte as it was stored."""
        if self.composed is not None:
            return self.composed
        return mime.compose(self.record.skeleton, self.record.parts, self.blobs)

    def iter_content(self, start: int = 0, end: int | None = None, *,
                     chunk_size: int | None = 65536) -> Iterator[bytes]:
        """The bytes ``[start:end]`` of the message in chunks of at most ``chunk_size``, without building it whole
        (None: the stored pieces as they are, the skeleton's stretches and each part's bytes whole)."""
        if self.composed is not None:
            return mime.iter_compose(self.composed, (), self.get_blob, start, end, chunk_size)
        return mime.iter_compose(self.record.skeleton, self.record.parts, self.get_blob, start, end, chunk_size)


class ContentCache:
    """The bytes of recently read messages, by (mailbox id, UID), for :meth:`MessageService.open_message`.

    A message's content never changes and a UID is never reused in a mailbox; the stored message id is kept and
    compared too. Memory is bounded: at most ``max_bytes`` in all (least recently read dropped first), messages
    over ``max_item`` bytes are not kept. An entry saves reading the content; the message is still looked up in
    the store (it may have been expunged, its flags changed) unless the caller knows it is there (see
    :meth:`MessageService.open_message`), and then the record kept with it (flags as of when it was read)
    serves."""

    def __init__(self, max_bytes: int = 32 << 20, max_item: int = 4 << 20) -> None:
        self.max_bytes = max_bytes
        self.max_item = min(max_item, max_bytes)
        self.size = 0
        self._items: OrderedDict[tuple[str, int], tuple[MessageRecord, bytes]] = OrderedDict()

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._items

    def get(self, key: tuple[str, int], message_id: str) -> tuple[MessageRecord, bytes] | None:
        """The record (as of when it was put) and the content, if they are kept for this message id."""
        item = self._items.get(key)
        if item is None or item[0].id != message_id:
            return None
        self._items.move_to_end(key)
        return item

    def put(self, key: tuple[str, int], record: MessageRecord, content: bytes) -> None:
        self.discard(key)
        if len(content) > self.max_item:
            return
        self._items[key] = (record, content)
        self.size += len(content)
        while self.size > self.max_bytes:
            _key, (_id, dropped) = self._items.popitem(last=False)
            self.size -= len(dropped)

    def discard(self, key: tuple[str, int]) -> None:
        item = self._items.pop(key, None)
        if item is not None:
            self.size -= len(item[1])


class MessageService:
    """The message rules on the ``Messages`` role; ``origin`` names the session making a change, so that it can
    skip its own nudge."""

    def __init__(self, messages: Messages, accounts: Accounts, blobs: BlobStore, pubsub: PubSub, *,
                 default_quota: int, max_message_size: int, content_cache_bytes: int = 32 << 20) -> None:
        self.store = messages
        self.accounts = accounts
        self.blobs = blobs
        self.pubsub = pubsub
        self.default_quota = default_quota
        self.max_message_size = max_message_size
        #: messages read by :meth:`open_message` (POP3 RETR/TOP, the CLI export), see :class:`ContentCache`
        self.content_cache = ContentCache(content_cache_bytes)

    # -- quota: the one rule -------------------------------------------------------------------------------------
    def quota_of(self, user: User) -> int:
        """The user's storage limit in bytes: their own, else the server default."""
        return user.quota if user.quota is not None else self.default_quota

    async def quota(self, user_id: str) -> Quota:
        user = await self.accounts.get_user(user_id)
        return Quota(user.storage_used, self.quota_of(user))

    async def check_room(self, user_id: str, size: int) -> None:
        """QuotaExceeded when ``size`` more bytes would not fit (a cheap early refusal before reading a literal
        or DATA; the store checks again, atomically, when it adds the message)."""
        user = await self.accounts.get_user(user_id)
        if user.storage_used + size > self.quota_of(user):
            raise QuotaExceeded("mailbox is over quota")

    def check_size(self, size: int) -> None:
        if size > self.max_message_size:
            raise MessageTooLarge(f"message of {size} bytes is over the {self.max_message_size} byte limit")

    # -- writes ---------------------------------------------------------------------------------------------------
    async def _nudge(self, mailbox: Mailbox | str, user_id: str, modseq: int, origin: str) -> None:
        mailbox_id = mailbox if isinstance(mailbox, str) else mailbox.id
        await self.pubsub.publish(user_channel(user_id), Nudge(mailbox_id, modseq, origin))

    async def store_prepared(self, targets: Sequence[tuple[User, str]], prepared: PreparedMessage, *,
                             flags: Sequence[str] = (), internal_date: dt.datetime | None = None,
                             origin: str = "") -> list[AppendResult | DomainError]:
        """Store one prepared message into each ``(user, mailbox id)`` in one transaction (its attachments once
        for all); one outcome per target. Nudges every mailbox that got it."""
        when = internal_date or dt.datetime.now(dt.UTC)
        kept = tuple(f for f in flags if f != RECENT)
        items = [NewMessage(user.id, mailbox_id, prepared, kept, when, quota=self.quota_of(user))
                 for user, mailbox_id in targets]
        outcomes = await self.store.append_messages(items)
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, AppendResult):
                await self._nudge(item.mailbox_id, item.user_id, outcome.modseq, origin)
        return outcomes

    async def append(self, user: User, mailbox: Mailbox, raw: bytes, *, flags: Sequence[str] = (),
                     internal_date: dt.datetime | None = None, origin: str = "") -> AppendResult:
        """APPEND: size limit, parse (off the event loop when big), store, nudge. Raises MessageTooLarge,
        QuotaExceeded, InvalidInput (empty message) or NotFound (mailbox gone)."""
        if not raw:
            raise InvalidInput("empty message", "message")
        self.check_size(len(raw))
        prepared = await prepare_soon(raw)
        (outcome,) = await self.store_prepared([(user, mailbox.id)], prepared, flags=flags,
                                               internal_date=internal_date, origin=origin)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def set_flags(self, mailbox: Mailbox, uids: Sequence[int], mode: FlagMode, flags: Sequence[str], *,
                        unchangedsince: int | None = None, origin: str = "") -> FlagChange:
        """Change flags (\\Recent is the server's and is ignored); nudges when anything changed."""
        change = await self.store.set_flags(mailbox.id, uids, mode, [f for f in flags if f != RECENT],
                                            unchangedsince=unchangedsince)
        if change.changed:
            await self._nudge(mailbox, mailbox.user_id, max(c.modseq for c in change.changed), origin)
        return change

    async def mark_seen(self, mailbox: Mailbox, uids: Sequence[int], *, origin: str = "") -> FlagChange:
        """Set \\Seen (reading a message: IMAP FETCH BODY[], POP3 RETR), with its nudge."""
        return await self.set_flags(mailbox, uids, FlagMode.ADD, [SEEN], origin=origin)

    async def copy(self, source: Mailbox, uids: Sequence[int], target: Mailbox, *, user: User,
                   origin: str = "") -> list[tuple[int, int]]:
        """Copy messages to another mailbox of the user (quota checked atomically); nudges the target."""
        pairs = await self.store.copy_messages(source.id, uids, target.id, quota=self.quota_of(user))
        if pairs:
            await self._nudge(target, target.user_id, 0, origin)
        return pairs

    async def move(self, source: Mailbox, uids: Sequence[int], target: Mailbox, *,
                   origin: str = "") -> list[tuple[int, int]]:
        """Move messages (no storage change); nudges both mailboxes."""
        pairs = await self.store.copy_messages(source.id, uids, target.id, move=True)
        if pairs:
            await self._nudge(target, target.user_id, 0, origin)
            await self._nudge(source, source.user_id, 0, origin)
        return pairs

    async def seen_and_move(self, mailbox: Mailbox, seen: Sequence[int], moved: Sequence[int],
                            target: Mailbox | None, *, origin: str = "") -> FlagsAndMoves:
        """Mark ``seen`` and ``moved`` \\Seen and move ``moved`` to ``target`` (None: delete them for good), in one
        commit (POP3's QUIT); messages gone meanwhile are skipped. Nudges every mailbox that changed."""
        outcome = await self.store.flag_and_move(mailbox.id, seen, [SEEN], moved,
                                                 target.id if target is not None else None)
        if outcome.moved and target is not None:
            await self._nudge(target, target.user_id, 0, origin)
        if outcome.moved or outcome.removed or outcome.flagged.changed:
            await self._nudge(mailbox, mailbox.user_id, max((c.modseq for c in outcome.flagged.changed), default=0),
                              origin)
        return outcome

    async def expunge(self, mailbox: Mailbox, uids: Sequence[int], *, origin: str = "") -> list[int]:
        """Remove messages for good; nudges when any went."""
        removed = await self.store.expunge(mailbox.id, uids)
        if removed:
            await self._nudge(mailbox, mailbox.user_id, 0, origin)
        return removed

    # -- reads ----------------------------------------------------------------------------------------------------
    async def records(self, mailbox_id: str, uids: Sequence[int], *, content: bool) -> list[MessageRecord]:
        """The records of these UIDs that exist (without ``content``: metadata only)."""
        return await self.store.get_messages(mailbox_id, uids, content=content)

    async def sort_keys(self, mailbox_id: str, uids: Sequence[int], *, addresses: bool) -> list[SortKeyRow]:
        """What SORT compares of these messages (those that exist), kept by the store (without ``addresses``: not
        the address keys)."""
        return await self.store.sort_keys(mailbox_id, uids, addresses=addresses)

    async def sort_order(self, mailbox_id: str, criteria: Sequence[tuple[str, bool]]) -> list[int] | None:
        """Every UID of the mailbox in SORT's order, when the store orders (else None)."""
        return await self.store.sort_order(mailbox_id, criteria)

    async def thread_keys(self, mailbox_id: str, uids: Sequence[int]) -> list[ThreadKeyRow]:
        """What THREAD reads of these messages (those that exist)."""
        return await self.store.thread_keys(mailbox_id, uids)

    async def open_records(self, records: Sequence[MessageRecord]) -> list[OpenedMessage]:
        """Records read with content, joined with the blobs they need (one blob read for all)."""
        needed = {p.blob for r in records for p in r.parts}
        blobs = await self.blobs.get_blobs(needed) if needed else {}
        return [OpenedMessage(r, {p.blob: blobs[p.blob] for p in r.parts}) for r in records]

    async def open_message(self, mailbox_id: str, uid: int, *, known_id: str | None = None) -> OpenedMessage:
        """One message ready to be read (NotFound if it does not exist).

        A message read recently comes from :attr:`content_cache`: one store call for its record without content
        instead of two (record, then blobs), and no recomposing. A message read from the store is recomposed
        whole when the cache may keep it. ``known_id``: the caller knows that the message is there with this id
        (nothing has changed the mailbox since it learnt so: a POP3 session between its maildrop snapshot and the
        first nudge about INBOX); from the cache, no store call is made at all."""
        key = (mailbox_id, uid)
        cache = self.content_cache
        if known_id is not None and (kept := cache.get(key, known_id)) is not None:
            return OpenedMessage(kept[0], {}, kept[1])
        if key in cache:
            found = await self.store.get_messages(mailbox_id, [uid], content=False)
            if not found:
                cache.discard(key)
                raise NotFound(f"no message {uid}")
            kept = cache.get(key, found[0].id)
            if kept is not None:
                return OpenedMessage(found[0], {}, kept[1])
        found = await self.store.get_messages(mailbox_id, [uid], content=True)
        if not found:
            raise NotFound(f"no message {uid}")
        (opened,) = await self.open_records(found)
        if opened.record.size <= cache.max_item:
            composed = opened.content()
            cache.put(key, opened.record, composed)
            return OpenedMessage(opened.record, opened.blobs, composed)
        return opened

    async def thread_counts(self, mailbox_id: str, thread_ids: Sequence[str]) -> dict[str, int]:
        """How many messages of the mailbox each of these threads has."""
        return await self.store.thread_counts(mailbox_id, thread_ids)

    async def summaries(self, mailbox_id: str, *, newest: int | None = None) -> list[MessageSummary]:
        """The mailbox's messages in UID order (only the ``newest`` ones, if given), without content."""
        return await self.store.list_messages(mailbox_id, newest=newest)

    async def append_all(self, user: User, mailbox: Mailbox,
                         messages: Sequence[tuple[bytes, Sequence[str], dt.datetime | None]], *,
                         origin: str = "") -> list[AppendResult]:
        """APPEND of several messages at once (IMAP MULTIAPPEND, RFC 3502), all or none: each ``(raw, flags,
        internal date or None)`` is checked for size and the quota for their sum before anything is written, then
        all are stored in one transaction. Should the store still refuse some (another writer used the room
        meanwhile), the ones it stored are removed again and the refusal is raised. One nudge for the mailbox.

        Raises MessageTooLarge, QuotaExceeded, InvalidInput (an empty message) or NotFound (mailbox gone)."""
        for raw, _flags, _date in messages:
            if not raw:
                raise InvalidInput("empty message", "message")
            self.check_size(len(raw))
        if len(messages) > 1:  # one message: the store's conditional increment is the whole check
            await self.check_room(user.id, sum(len(raw) for raw, _flags, _date in messages))
        now = dt.datetime.now(dt.UTC)
        quota = self.quota_of(user)
        items = [NewMessage(user.id, mailbox.id, await prepare_soon(raw), tuple(f for f in flags if f != RECENT),
                            date or now, quota=quota) for raw, flags, date in messages]
        outcomes = await self.store.append_messages(items)
        stored = [o for o in outcomes if isinstance(o, AppendResult)]
        refused = [o for o in outcomes if not isinstance(o, AppendResult)]
        if refused:
            if stored:
                await self.expunge(mailbox, [o.uid for o in stored], origin=origin)
            raise refused[0]
        await self._nudge(mailbox, user.id, max(o.modseq for o in stored), origin)
        return stored

    async def count_with_flag(self, mailbox: Mailbox, flag: str) -> int:
        """How many messages of ``mailbox`` carry ``flag`` (IMAP4rev2's STATUS DELETED, RFC 9051 6.3.11), from
        one snapshot of the mailbox: a read of every message's flags, as the mailbox row keeps no such count."""
        table = (await self.store.mailbox_snapshot(mailbox.id)).table
        having = {n for n, flags in enumerate(table.flag_sets.sets) if flag in flags}
        return sum(1 for n in table.flag_ids if n in having)
