"""The ``PubSub`` role: lossy nudges that tell sessions to replay the journal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from typing import Protocol


class Subscription(Protocol):
    #: payloads lost to overflow since the subscription began (the subscriber must resync from the journal)
    dropped: int

    def __aiter__(self) -> AsyncIterator[str]: ...

    def receive_nowait(self) -> str:
        """The next queued payload; raises ``trio.WouldBlock`` when none is queued."""
        ...


class PubSub(Protocol):
    """Channels carry short string payloads. Delivery is best effort: a slow subscriber may miss nudges and must
    then resync from the journal, so a subscriber's buffer is bounded and overflow drops messages (and is counted).
    """

    async def publish(self, channel: str, payload: str) -> None: ...

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """``async with pubsub.subscribe("user:ID") as sub: async for payload in sub: ...``"""
        ...

    async def aclose(self) -> None: ...
