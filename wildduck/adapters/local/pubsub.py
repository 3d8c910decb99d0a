"""In-process pub/sub for the single-node deployment: bounded, lossy fan-out of nudges to trio tasks."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import trio

from wildduck.model import Nudge, Resync

log = logging.getLogger(__name__)


class LocalSubscription:
    """One subscriber's bounded queue of nudges.

    A nudge offered to a full queue is lost and counted; the subscriber then gets one :class:`Resync` (with the
    count) after the nudges queued before the loss and before any queued after it. Losses while that marker waits
    in the queue are added to it: by the time the subscriber reads the marker and re-reads its journals, they are
    all behind it.
    """

    def __init__(self, size: int) -> None:
        self._size = max(1, size)
        # a list, not a deque: an empty deque takes ~600 bytes (its first block) and most subscriptions are empty
        # most of the time; the queue is bounded by ``size``, so taking from its front stays cheap
        self._items: list[Nudge | Resync] = []
        #: nudges lost since the last marker was taken; the queued marker (at most one) carries them
        self._lost = 0
        self._marker_queued = False
        self._closed = False
        self._lot = trio.lowlevel.ParkingLot()
        #: called with each nudge as it is queued (see the port's ``Subscription``)
        self.alarm: Callable[[Nudge], None] | None = None

    def _offer(self, nudge: Nudge) -> None:
        if self._closed:
            return
        if len(self._items) - self._marker_queued >= self._size:
            self._lose()  # the queued marker is a placeholder: the count is filled in when it is taken
            return
        self._items.append(nudge)
        self._lot.unpark_all()
        if self.alarm is not None:
            self.alarm(nudge)

    def _lose(self) -> None:
        """Count one nudge lost elsewhere (another process could not pass it on): a :class:`Resync` follows."""
        if self._closed:
            return
        self._lost += 1
        if not self._marker_queued:
            self._items.append(Resync())
            self._marker_queued = True
        self._lot.unpark_all()

    def _close(self) -> None:
        self._closed = True
        self._lot.unpark_all()

    def _take(self) -> Nudge | Resync:
        item = self._items.pop(0)
        if isinstance(item, Resync):
            item, self._lost, self._marker_queued = Resync(lost=self._lost), 0, False
        return item

    def receive_nowait(self) -> Nudge | Resync:
        """The next queued item; raises ``trio.WouldBlock`` when none is queued (``trio.EndOfChannel`` once the
        pub/sub is closed and the queue is drained)."""
        if not self._items:
            raise trio.EndOfChannel if self._closed else trio.WouldBlock
        return self._take()

    async def receive(self) -> Nudge | Resync:
        """The next item, waiting for one; ``trio.EndOfChannel`` once closed and drained. Cancellation loses
        nothing (an item is taken only when it is returned)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        while not self._items:
            if self._closed:
                raise trio.EndOfChannel
            await self._lot.park()
        return self._take()

    def __aiter__(self) -> AsyncIterator[Nudge | Resync]:
        return self

    async def __anext__(self) -> Nudge | Resync:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None


class LocalPubSub:
    """``PubSub`` within one process: each subscriber has a bounded queue fed without blocking."""

    def __init__(self, buffer_size: int = 256) -> None:
        self.buffer_size = buffer_size
        self._subscribers: dict[str, set[LocalSubscription]] = defaultdict(set)
        self._closed = False

    async def publish(self, channel: str, nudge: Nudge) -> None:
        """Offer ``nudge`` to every subscriber of ``channel``; never blocks."""
        await self.publish_here(channel, nudge)

    async def publish_here(self, channel: str, nudge: Nudge) -> None:
        """Offer ``nudge`` to the subscribers in this process only (subclasses that also pass nudges on to other
        processes keep this for the nudges those processes pass here)."""
        for sub in tuple(self._subscribers.get(channel, ())):
            sub._offer(nudge)
        await trio.lowlevel.checkpoint()

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[LocalSubscription]:
        """Subscribe for the duration of the ``async with`` block."""
        if self._closed:
            raise RuntimeError("pub/sub is closed")
        sub = LocalSubscription(self.buffer_size)
        self._subscribers[channel].add(sub)
        try:
            yield sub
        finally:
            subs = self._subscribers.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subscribers[channel]
            sub._close()

    def resync_all(self) -> None:
        """Tell every subscriber that nudges were lost on the way here (each gets a :class:`Resync` and re-reads
        its journals): a link from another process of the node broke or overflowed."""
        for group in self._subscribers.values():
            for sub in group:
                sub._lose()

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))

    async def aclose(self) -> None:
        """Close every subscription: their iterators end once drained."""
        self._closed = True
        subs = [sub for group in self._subscribers.values() for sub in group]
        self._subscribers.clear()
        for sub in subs:
            sub._close()
        await trio.lowlevel.checkpoint()


if TYPE_CHECKING:
    from wildduck.ports.pubsub import PubSub

    def _fills_the_role(c: LocalPubSub) -> PubSub:
        """mypy checks here that ``LocalPubSub`` implements the port."""
        return c
