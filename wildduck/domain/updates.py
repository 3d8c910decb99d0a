"""A user's change stream (the API's ``/updates``): every mailbox's journal replayed from a position, then followed
live through the user's nudges; rendered as WildDuck's journal events (EXISTS, EXPUNGE, FETCH, CREATE, RENAME,
DELETE and COUNTERS).

The journal is kept per mailbox, in MODSEQ order, so a position in the stream is a :class:`Position`: the MODSEQ
read so far in each mailbox (and its path, to notice a rename). It travels as the events' id, so that a client that
reconnects with ``Last-Event-ID`` gets exactly what it missed: each mailbox is read after its own MODSEQ, up to its
journal's watermark (a writer that commits late is read next time, never skipped). A mailbox the position does not
name is new to the client (CREATE, then its journal from the start); one the position names that is gone is
DELETE. A pruned journal cannot be replayed: the client gets COUNTERS for that mailbox (resync from a listing).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import trio

from wildduck.domain.mailboxes import MailboxService
from wildduck.model import JournalOp, Mailbox, Nudge, Resync, user_channel
from wildduck.ports import Journal, PubSub
from wildduck.ports.pubsub import Subscription

SEEN = "\\Seen"


@dataclass(slots=True)
class Position:
    """Per mailbox id: (MODSEQ read up to, path as last reported)."""

    mailboxes: dict[str, tuple[int, str]] = field(default_factory=dict)

    def encode(self) -> str:
        """The position as an event id: compact, URL-safe, one line."""
        data = json.dumps({k: [v[0], v[1]] for k, v in sorted(self.mailboxes.items())}, separators=(",", ":"))
        return "v1." + base64.urlsafe_b64encode(zlib.compress(data.encode(), 9)).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> Position:
        """The inverse of :meth:`encode`; ValueError for anything else."""
        if not text.startswith("v1."):
            raise ValueError("not a position")
        body = text[3:]
        try:
            raw = zlib.decompress(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)), bufsize=1 << 16)
            data = json.loads(raw)
        except (binascii.Error, zlib.error, ValueError, UnicodeDecodeError):
            raise ValueError("not a position") from None
        if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, list) and len(v) == 2 and isinstance(v[0], int)
                and isinstance(v[1], str) for k, v in data.items()):
            raise ValueError("not a position")
        return cls({k: (v[0], v[1]) for k, v in data.items()})


@dataclass(frozen=True, slots=True)
class Update:
    """One event: WildDuck's journal payload (``command``, ``mailbox``...) and the stream's position just after
    it (what a client that saw it resumes from)."""

    data: dict[str, Any]
    position: Position


@dataclass(frozen=True, slots=True)
class Batch:
    """What :meth:`UpdatesService.follow` yields: the updates found (maybe none) and the position after them."""

    updates: list[Update]
    position: Position
    #: the first batch: the journal replayed from the start position (what follows is live)
    replay: bool = False
    #: nothing happened for the idle period
    idle: bool = False


class UpdatesService:
    """Reads what changed in a user's mailboxes since a :class:`Position`, and the nudges that say when to look."""

    def __init__(self, journal: Journal, mailboxes: MailboxService, pubsub: PubSub) -> None:
        self.journal = journal
        self.mailboxes = mailboxes
        self.pubsub = pubsub

    @asynccontextmanager
    async def watch(self, user_id: str) -> AsyncIterator[Subscription]:
        """The user's nudges (``Nudge`` or ``Resync``) for the block; cancellation leaves it cleanly."""
        async with self.pubsub.subscribe(user_channel(user_id)) as subscription:
            yield subscription

    async def start(self, user_id: str) -> Position:
        """A position at the start of every mailbox's journal (WildDuck replays the whole journal when the client
        names no event)."""
        return Position({m.id: (0, m.path) for m in await self.mailboxes.all(user_id)})

    async def read(self, user_id: str, position: Position, *,
                   only: set[str] | None = None) -> tuple[list[Update], Position]:
        """What changed since ``position`` (in the mailboxes ``only`` names, and in the list of mailboxes), and the
        position after it."""
        current = {m.id: m for m in await self.mailboxes.all(user_id)}
        known = dict(position.mailboxes)
        out: list[Update] = []

        def emit(data: dict[str, Any]) -> None:
            out.append(Update(data, Position(dict(known))))

        for mailbox_id in [k for k in known if k not in current]:
            path = known.pop(mailbox_id)[1]
            emit({"command": "DELETE", "mailbox": mailbox_id, "path": path})
        for mailbox in current.values():
            if mailbox.id not in known:
                known[mailbox.id] = (0, mailbox.path)
                emit({"command": "CREATE", "mailbox": mailbox.id, "path": mailbox.path})
            elif only is not None and mailbox.id not in only and known[mailbox.id][1] == mailbox.path:
                continue
            await self._read_mailbox(mailbox, known, emit)
        return out, Position(known)

    async def follow(self, user_id: str, start: Position, *, idle: float, coalesce: float,
                     stopping: trio.Event | None = None) -> AsyncGenerator[Batch]:
        """The user's change stream from ``start``: the replay (one batch, maybe empty), then a batch per wake-up
        that found something, and an ``idle`` batch after ``idle`` seconds without one (the mailbox list is read
        then too: a mailbox created elsewhere sends no nudge). Nudges arriving within ``coalesce`` seconds of the
        first are read together. Ends when ``stopping`` is set or the subscription ends (pub/sub closed). The
        subscription is taken before the replay is read, so nothing committed in between is missed."""
        async with self.watch(user_id) as nudges:
            found, position = await self.read(user_id, start)
            yield Batch(found, position, replay=True)
            while True:
                woke = await _wake(nudges, stopping, idle, coalesce)
                if woke is None:
                    return
                found, position = await self.read(user_id, position, only=woke.only)
                if found or woke.timed_out:
                    yield Batch(found, position, idle=not found)

    async def _read_mailbox(self, mailbox: Mailbox, known: dict[str, tuple[int, str]],
                            emit: Callable[[dict[str, Any]], None]) -> None:
        since, path = known[mailbox.id]
        page = await self.journal.read_journal(mailbox.id, since)
        if page.mailbox is None:
            known.pop(mailbox.id)
            emit({"command": "DELETE", "mailbox": mailbox.id, "path": path})
            return
        if page.mailbox.path != path:
            known[mailbox.id] = (since, page.mailbox.path)
            emit({"command": "RENAME", "mailbox": mailbox.id, "path": page.mailbox.path})
        counted = page.pruned
        if not page.pruned:
            for entry in page.entries:
                item: dict[str, Any] = {"command": entry.op.value, "mailbox": mailbox.id, "uid": entry.uid}
                if entry.message_id is not None:
                    item["message"] = entry.message_id
                if entry.flags is not None:
                    item["flags"] = list(entry.flags)
                    if entry.op is JournalOp.EXISTS:
                        item["unseen"] = SEEN not in entry.flags
                known[mailbox.id] = (entry.modseq, page.mailbox.path)
                emit(item)
                counted = True
        known[mailbox.id] = (max(since, page.watermark), page.mailbox.path)
        if counted:
            status = await self.mailboxes.status(page.mailbox, first_unseen=False)
            emit({"command": "COUNTERS", "mailbox": mailbox.id, "total": status.messages, "unseen": status.unseen})


def touched(item: Nudge | Resync) -> set[str] | None:
    """The mailboxes a nudge says to read (None: all of them)."""
    if isinstance(item, Resync) or item.gone or not item.mailbox_id:
        return None
    return {item.mailbox_id}


@dataclass(frozen=True, slots=True)
class _Woken:
    #: the mailboxes to read (None: all of them)
    only: set[str] | None
    timed_out: bool


async def _wake(nudges: Subscription, stopping: trio.Event | None, idle: float, coalesce: float) -> _Woken | None:
    """Wait for the next nudge (and those within ``coalesce`` seconds of it), at most ``idle`` seconds; None when
    ``stopping`` is set or the subscription has ended."""
    woken: _Woken | None = None
    async with trio.open_nursery() as nursery:
        if stopping is not None:
            async def stop() -> None:
                await stopping.wait()
                nursery.cancel_scope.cancel()

            nursery.start_soon(stop)
        only: set[str] | None = set()
        with trio.move_on_after(idle) as waited:
            try:
                first = await nudges.__aiter__().__anext__()
            except StopAsyncIteration:
                nursery.cancel_scope.cancel()
                return None
            only = touched(first)
            await trio.sleep(coalesce)
            while True:
                try:
                    more = nudges.receive_nowait()
                except trio.WouldBlock:
                    break
                names = touched(more)
                only = None if names is None or only is None else only | names
        woken = _Woken(only, waited.cancelled_caught)
        nursery.cancel_scope.cancel()
    return woken
