"""The ``PubSub`` role: lossy, typed nudges that tell sessions to replay a mailbox's journal."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Protocol

from wildduck.model import Nudge, Resync


class Subscription(Protocol):
    """A subscriber's bounded queue. When nudges are lost (overflow, a reconnect to the broker) the subscriber
    gets one :class:`Resync` marker before anything queued after the loss.

    ``alarm``, when set, is called with each nudge as it is queued (in the publisher's task: it must be quick and
    never raise or block): how a session waiting for its client learns at once that its account ended, without a
    task watching the queue."""

    alarm: Callable[[Nudge], None] | None

    def __aiter__(self) -> AsyncIterator[Nudge | Resync]: ...

    def receive_nowait(self) -> Nudge | Resync:
        """The next queued item; raises ``trio.WouldBlock`` when none is queued."""
        ...


class PubSub(Protocol):
    """Delivery is best effort: the journal is the truth, nudges only say "look now"."""

    async def publish(self, channel: str, nudge: Nudge) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """``async with pubsub.subscribe(user_channel(uid)) as sub: async for item in sub: ...``"""
        ...

    async def aclose(self) -> None: ...
