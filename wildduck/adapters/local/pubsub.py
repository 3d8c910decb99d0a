"""In-process pub/sub for the single-node deployment: bounded, lossy fan-out to trio tasks."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio

log = logging.getLogger(__name__)


class LocalSubscription:
    """One subscriber's bounded queue. ``dropped`` counts payloads lost to overflow (the subscriber must then
    resync from the journal)."""

    def __init__(self, size: int) -> None:
        self._send, self._recv = trio.open_memory_channel[str](size)
        self.dropped = 0

    def _offer(self, payload: str) -> None:
        try:
            self._send.send_nowait(payload)
        except trio.WouldBlock:
            self.dropped += 1

    def __aiter__(self) -> AsyncIterator[str]:
        return self._recv.__aiter__()

    def receive_nowait(self) -> str:
        """The next queued payload; raises ``trio.WouldBlock`` when there is none."""
        return self._recv.receive_nowait()


class LocalPubSub:
    """``PubSub`` within one process: each subscriber has a bounded memory channel fed with ``send_nowait``."""

    def __init__(self, buffer_size: int = 256) -> None:
        self.buffer_size = buffer_size
        self._subscribers: dict[str, set[LocalSubscription]] = defaultdict(set)
        self._closed = False

    async def publish(self, channel: str, payload: str) -> None:
        """Offer ``payload`` to every subscriber of ``channel``; never blocks."""
        for sub in tuple(self._subscribers.get(channel, ())):
            sub._offer(payload)
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
            await sub._send.aclose()

    def subscriber_count(self, channel: str) -> int:
        return len(self._subscribers.get(channel, ()))

    async def aclose(self) -> None:
        """Close every subscription: their iterators end."""
        self._closed = True
        subs = [sub for group in self._subscribers.values() for sub in group]
        self._subscribers.clear()
        for sub in subs:
            await sub._send.aclose()
