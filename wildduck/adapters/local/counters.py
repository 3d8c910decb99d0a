"""In-process ``Counters`` for the single node: plain dictionaries (every session runs in this process)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import trio

from wildduck.ports.counters import Window

#: windows kept before expired ones are swept
_SWEEP_AT = 10_000


class LocalCounters:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._windows: dict[str, tuple[int, float]] = {}  # key -> (count, closes at)
        self._slots: dict[str, int] = {}

    def _now(self) -> float:
        return self._clock()

    def _current(self, key: str, now: float) -> tuple[int, float]:
        count, closes = self._windows.get(key, (0, 0.0))
        return (count, closes) if closes > now else (0, 0.0)

    async def window(self, key: str) -> Window:
        now = self._now()
        count, closes = self._current(key, now)
        await trio.lowlevel.checkpoint()
        return Window(count, max(closes - now, 0.0))

    async def increment(self, key: str, window: float) -> Window:
        now = self._now()
        count, closes = self._current(key, now)
        if not count:
            closes = now + window
        if len(self._windows) >= _SWEEP_AT:
            self._windows = {k: v for k, v in self._windows.items() if v[1] > now}
        self._windows[key] = (count + 1, closes)
        await trio.lowlevel.checkpoint()
        return Window(count + 1, closes - now)

    async def reset(self, key: str) -> None:
        self._windows.pop(key, None)
        await trio.lowlevel.checkpoint()

    @asynccontextmanager
    async def connection(self, key: str, limit: int) -> AsyncIterator[bool]:
        held = self._slots.get(key, 0)
        if held >= limit:
            yield False
            return
        self._slots[key] = held + 1
        try:
            yield True
        finally:
            left = self._slots[key] - 1
            if left:
                self._slots[key] = left
            else:
                del self._slots[key]

    async def connections(self, key: str) -> int:
        await trio.lowlevel.checkpoint()
        return self._slots.get(key, 0)
