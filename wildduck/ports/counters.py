"""The ``Counters`` role: rate-limit windows and connection counts shared by every session of the deployment
(in-process for the single node, Redis when scaled out)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Window:
    """A fixed-window counter: ``count`` events since the window opened, ``retry_after`` seconds until it closes
    (0 when no window is open)."""

    count: int
    retry_after: float


class Counters(Protocol):
    async def window(self, key: str) -> Window:
        """The current count of ``key`` (0 once its window has closed)."""
        ...

    async def increment(self, key: str, window: float) -> Window:
        """Count one event; the first event opens a window of ``window`` seconds."""
        ...

    async def reset(self, key: str) -> None:
        ...

    def connection(self, key: str, limit: int) -> AbstractAsyncContextManager[bool]:
        """Hold one of ``limit`` connection slots of ``key`` for the ``async with`` block: yields False (holding
        nothing) when all are taken."""
        ...

    async def connections(self, key: str) -> int:
        """Slots of ``key`` held right now."""
        ...
